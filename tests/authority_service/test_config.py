"""authority_service.config: strict settings; secrets from env/credentials, refused when weak."""

from __future__ import annotations

import pytest

from authority_service.config import load_authority_settings
from authority_service.credentials import (
    DATABASE_PASSWORD_ENV_VAR,
    JWT_SECRET_ENV_VAR,
    WeakSecretError,
    camera_key_env_var,
    load_database_password,
    load_secrets,
)
from shared.config_base import ConfigError, SecretNotFoundError

GOOD_JWT = "Vq3x9-Lw7pZ2kR8mT4nY6bH1cJ5dF0gS-aE"


@pytest.fixture
def clean_env(monkeypatch):
    for name in (JWT_SECRET_ENV_VAR, "CREDENTIALS_DIRECTORY", "UUNET_AUTHORITY_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _config(tmp_path, text: str):
    path = tmp_path / "authority.yml"
    path.write_text(text)
    return path


def test_load_settings_file_and_env_override(tmp_path, clean_env):
    path = _config(tmp_path, f"data_dir: {tmp_path}\njobs:\n  workers: 2\n  ttl_s: 600\n")
    clean_env.setenv("UUNET_AUTHORITY_JOBS__WORKERS", "3")
    settings = load_authority_settings(path)
    assert settings.jobs.workers == 3 and settings.jobs.ttl_s == 600
    assert settings.database_path == tmp_path / "authority.sqlite3"


def test_load_settings_unknown_key_and_bad_value_name_their_path(tmp_path, clean_env):
    path = _config(tmp_path, f"data_dir: {tmp_path}\njobs:\n  wrokers: 2\n  ttl_s: 5\n")
    with pytest.raises(ConfigError) as info:
        load_authority_settings(path)
    problems = "\n".join(info.value.problems)
    assert "jobs.wrokers: unknown key" in problems and "jobs.ttl_s" in problems


def test_segment_settings_default_to_one_pass_and_need_whole_ud_windows(tmp_path, clean_env):
    assert (
        load_authority_settings(_config(tmp_path, f"data_dir: {tmp_path}\n")).jobs.segment_workers
        == 1
    )
    path = _config(
        tmp_path, f"data_dir: {tmp_path}\njobs:\n  segment_workers: 4\n  segment_frames: 600\n"
    )
    with pytest.raises(ConfigError, match=r"jobs\.segment_frames"):  # not a multiple of 16
        load_authority_settings(path)
    clean_env.setenv("UUNET_AUTHORITY_JOBS__SEGMENT_FRAMES", "608")
    jobs = load_authority_settings(path).jobs
    assert (jobs.segment_workers, jobs.segment_frames) == (4, 608)


def test_load_settings_missing_data_dir_is_an_error(tmp_path, clean_env):
    with pytest.raises(ConfigError, match="data_dir"):
        load_authority_settings(_config(tmp_path, "log_level: INFO\n"))


def test_bad_camera_id_is_refused(tmp_path, clean_env):
    path = _config(tmp_path, f"data_dir: {tmp_path}\nmessages:\n  cameras: ['cam|1']\n")
    with pytest.raises(ConfigError, match=r"messages\.cameras"):
        load_authority_settings(path)


def test_load_secrets_refuses_missing_empty_short_and_placeholder_jwt_key(tmp_path, clean_env):
    settings = load_authority_settings(_config(tmp_path, f"data_dir: {tmp_path}\n"))
    with pytest.raises(SecretNotFoundError, match="refuses to start"):
        load_secrets(settings)
    clean_env.setenv(JWT_SECRET_ENV_VAR, "   ")
    with pytest.raises(SecretNotFoundError):
        load_secrets(settings)
    clean_env.setenv(JWT_SECRET_ENV_VAR, "short-but-random-7Q")
    with pytest.raises(WeakSecretError, match="at least 32"):
        load_secrets(settings)
    clean_env.setenv(JWT_SECRET_ENV_VAR, "changeme-changeme-changeme-changeme-42")
    with pytest.raises(WeakSecretError, match="placeholder"):
        load_secrets(settings)
    clean_env.setenv(JWT_SECRET_ENV_VAR, GOOD_JWT)
    assert load_secrets(settings).jwt_key == GOOD_JWT.encode()


def test_load_secrets_reads_credentials_directory_and_camera_keys(tmp_path, clean_env):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "jwt-signing-key").write_text(GOOD_JWT + "\n")
    (creds / "camera-key-cam.lobby-1").write_text("lobby-camera-key-0123456789abcdef")
    clean_env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    path = _config(tmp_path, f"data_dir: {tmp_path}\nmessages:\n  cameras: [cam.lobby-1, cam-2]\n")
    settings = load_authority_settings(path)
    with pytest.raises(SecretNotFoundError, match="camera-key-cam-2"):
        load_secrets(settings)
    assert camera_key_env_var("cam-2") == "UUNET_CAMERA_KEY_CAM_2"
    clean_env.setenv("UUNET_CAMERA_KEY_CAM_2", "platform-camera-key-9876543210zyx")
    secrets = load_secrets(settings)
    assert secrets.jwt_key == GOOD_JWT.encode()
    assert secrets.camera_keys == {
        "cam.lobby-1": b"lobby-camera-key-0123456789abcdef",
        "cam-2": b"platform-camera-key-9876543210zyx",
    }
    assert "lobby" not in repr(secrets)  # keys never show in logs or tracebacks


def test_load_secrets_refuses_low_entropy_jwt_key_and_the_edge_demo_camera_key(tmp_path, clean_env):
    path = _config(tmp_path, f"data_dir: {tmp_path}\nmessages:\n  cameras: [cam-2]\n")
    settings = load_authority_settings(path)
    clean_env.setenv("UUNET_CAMERA_KEY_CAM_2", "platform-camera-key-9876543210zyx")
    for weak in ("abcdefghabcdefghabcdefghabcdefgh", "01234567890123456789012345678901x"):
        clean_env.setenv(JWT_SECRET_ENV_VAR, weak)
        with pytest.raises(WeakSecretError, match=r"jwt-signing-key.*entropy"):
            load_secrets(settings)
    clean_env.setenv(JWT_SECRET_ENV_VAR, GOOD_JWT)
    clean_env.setenv("UUNET_CAMERA_KEY_CAM_2", "demo-camera-key-change-me")
    with pytest.raises(WeakSecretError, match=r"camera-key-cam-2.*placeholder"):
        load_secrets(settings)


def test_database_url_defaults_to_the_sqlite_file_and_refuses_a_password_or_other_backend(
    tmp_path, clean_env
):
    settings = load_authority_settings(_config(tmp_path, f"data_dir: {tmp_path}\n"))
    assert settings.database_url == f"sqlite:///{tmp_path / 'authority.sqlite3'}"
    clean_env.setenv("UUNET_AUTHORITY_DATABASE__URL", "postgresql://uunet@db:5432/uunet")
    assert load_authority_settings(_config(tmp_path, f"data_dir: {tmp_path}\n")).database_url == (
        "postgresql://uunet@db:5432/uunet"
    )
    for url, problem in (
        ("postgresql://uunet:hunter2@db/uunet", "must not hold a password"),
        ("mysql://uunet@db/uunet", "not supported"),
        ("sqlite://", "must name a file"),
    ):
        clean_env.setenv("UUNET_AUTHORITY_DATABASE__URL", url)
        with pytest.raises(ConfigError, match=problem) as info:
            load_authority_settings(_config(tmp_path, f"data_dir: {tmp_path}\n"))
        assert "hunter2" not in str(info.value)


def test_database_password_comes_from_the_environment_or_credentials(tmp_path, clean_env):
    clean_env.delenv(DATABASE_PASSWORD_ENV_VAR, raising=False)
    text = f"data_dir: {tmp_path}\ndatabase:\n  url: postgresql://uunet@db/uunet\n"
    settings = load_authority_settings(_config(tmp_path, text))
    assert load_database_password(settings) is None  # peer/certificate authentication
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "database-password").write_text("from-the-credential\n")
    clean_env.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    assert load_database_password(settings) == "from-the-credential"
    clean_env.setenv(DATABASE_PASSWORD_ENV_VAR, "from-the-environment")
    assert load_database_password(settings) == "from-the-environment"
    sqlite = load_authority_settings(_config(tmp_path, f"data_dir: {tmp_path}\n"))
    assert load_database_password(sqlite) is None  # SQLite has none


def test_celery_queue_needs_a_broker_url_without_password_and_a_lease_below_visibility(
    tmp_path, clean_env
):
    settings = load_authority_settings(_config(tmp_path, f"data_dir: {tmp_path}\n"))
    assert (settings.jobs.queue, settings.jobs.broker_url) == ("local", None)  # no broker
    for jobs, problem in (
        ("{queue: celery}", "needs jobs.broker_url"),
        ("{queue: celery, broker_url: 'redis://:hunter2@q:6379/0'}", "must not hold a password"),
        ("{broker_url: 'amqp://q:5672'}", "must be redis://"),
        ("{lease_s: 60, visibility_timeout_s: 30}", "lease_s must be shorter"),
    ):
        text = f"data_dir: {tmp_path}\njobs: {jobs}\n"
        with pytest.raises(ConfigError, match=problem) as info:
            load_authority_settings(_config(tmp_path, text))
        assert "hunter2" not in str(info.value)
    text = f"data_dir: {tmp_path}\njobs: {{queue: celery, broker_url: 'redis://q:6379/1'}}\n"
    assert load_authority_settings(_config(tmp_path, text)).jobs.queue == "celery"
