"""The ``storage`` section: a directory by default; ``s3`` needs its bucket; no credential ever
goes in the file or the endpoint URL; the environment can switch it."""

from __future__ import annotations

import pytest
import yaml

from authority_service.config import load_authority_settings
from shared.config_base import ConfigError


def _load(tmp_path, storage: dict | None):
    path = tmp_path / "authority.yml"
    values: dict = {"data_dir": str(tmp_path / "data")}
    if storage is not None:
        values["storage"] = storage
    path.write_text(yaml.safe_dump(values))
    return load_authority_settings(path)


def test_storage_defaults_to_the_data_directory(tmp_path):
    settings = _load(tmp_path, None)
    assert settings.storage.kind == "directory" and settings.storage.s3 is None
    assert settings.uploads_dir == tmp_path / "data" / "uploads"
    assert settings.results_dir == tmp_path / "data" / "results"


@pytest.mark.parametrize(
    ("storage", "problem"),
    [
        ({"kind": "s3"}, "storage: Value error, storage.kind s3 needs storage.s3"),
        ({"kind": "s3", "s3": {}}, "storage.s3.bucket: Field required"),
        (
            {"kind": "s3", "s3": {"bucket": "clips", "secret_access_key": "x"}},
            "storage.s3.secret_access_key: unknown key",
        ),
        (
            {"kind": "s3", "s3": {"bucket": "clips", "access_key_id": "AKIA"}},
            "storage.s3.access_key_id: unknown key",
        ),
        (
            {"kind": "s3", "s3": {"bucket": "clips", "endpoint_url": "http://u:p@minio:9000"}},
            "must not hold credentials",
        ),
        ({"kind": "s3", "s3": {"bucket": "Clips_1"}}, "must be an S3 bucket name"),
        ({"kind": "s3", "s3": {"bucket": "clips", "prefix": "/abs"}}, "storage.s3.prefix"),
        ({"kind": "s3", "s3": {"bucket": "clips", "prefix": "a/../"}}, "storage.s3.prefix"),
        ({"kind": "nfs"}, "storage.kind"),
    ],
)
def test_storage_refuses_what_is_wrong_naming_the_key(tmp_path, storage, problem):
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, storage)
    assert any(problem in line for line in raised.value.problems), raised.value.problems


def test_storage_s3_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("UUNET_AUTHORITY_STORAGE__KIND", "s3")
    monkeypatch.setenv("UUNET_AUTHORITY_STORAGE__S3__BUCKET", "uunet-clips")
    monkeypatch.setenv("UUNET_AUTHORITY_STORAGE__S3__ENDPOINT_URL", "http://minio:9000")
    s3 = _load(tmp_path, None).storage.s3
    assert s3 is not None and (s3.bucket, s3.endpoint_url) == ("uunet-clips", "http://minio:9000")
    assert (s3.prefix, s3.addressing_style, s3.region) == ("", "path", "us-east-1")
