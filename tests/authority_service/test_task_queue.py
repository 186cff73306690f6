"""authority_service.task_queue: the broker password is a secret put into the URL only when the
queue is used, and the Celery application redelivers the jobs of lost workers."""

from __future__ import annotations

from authority_service.task_queue import BROKER_PASSWORD_ENV_VAR, broker_url, celery_app
from tests.authority_service.conftest import settings_for


def test_broker_password_comes_from_the_credential_or_environment(
    tmp_path, models_dir, monkeypatch
):
    monkeypatch.delenv(BROKER_PASSWORD_ENV_VAR, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    jobs = {"queue": "celery", "broker_url": "redis://queue.internal:6379/0"}
    settings = settings_for(tmp_path, models_dir, jobs=jobs)
    assert broker_url(settings) == "redis://queue.internal:6379/0"  # none: no password
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "broker-password").write_text("p@ss/w:rd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    assert broker_url(settings) == "redis://:p%40ss%2Fw%3Ard@queue.internal:6379/0"
    monkeypatch.setenv(BROKER_PASSWORD_ENV_VAR, "from-env")
    user = settings_for(tmp_path, models_dir, jobs={**jobs, "broker_url": "rediss://uu@q:6380/2"})
    assert broker_url(user) == "rediss://uu:from-env@q:6380/2"


def test_celery_app_acknowledges_late_and_redelivers_lost_workers_jobs(tmp_path, models_dir):
    jobs = {"queue": "celery", "broker_url": "redis://q:6379/0", "visibility_timeout_s": 600}
    conf = celery_app(settings_for(tmp_path, models_dir, jobs=jobs)).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 600
    assert conf.accept_content == ["json"]
