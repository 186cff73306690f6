"""``storage.kind: s3`` against a real S3-compatible server process (moto's standalone server,
:mod:`tests.authority_service.s3_server` says why not MinIO): a job over the real HTTP API keeps
its upload and then its result in the bucket, no clip on local disk, the result streamed back is
the directory store's byte for byte; start-up names a missing bucket, refused credentials or an
unreachable endpoint; a job whose upload or bucket is gone fails with the reason, audited."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from authority_service.api.app import create_app
from authority_service.cli import run
from authority_service.clip_store import (
    ObjectMissingError,
    StoreUnavailableError,
    result_key,
    upload_key,
)
from authority_service.credentials import JWT_SECRET_ENV_VAR, camera_key_env_var
from authority_service.s3_store import (
    ACCESS_KEY_ID_ENV_VAR,
    SECRET_ACCESS_KEY_ENV_VAR,
    S3ClipStore,
)
from authority_service.service import build_services
from authority_service.storage_settings import S3StorageSettings
from tests.authority_service.backends import database_settings
from tests.authority_service.conftest import (
    CAMERA_ID,
    CAMERA_KEY,
    JWT_KEY,
    SECRETS,
    assert_no_internals,
    free_port,
    reason,
    settings_for,
    wait_for_job,
)
from tests.authority_service.s3_server import (
    S3Server,
)

JOBS = "/v1/reconstructions"
WHY = "Case file reviewed: the warrant covers this clip."
RESULT_SUFFIXES = (".mp4", ".faces.jsonl.gz", ".preview-public-rgb.mp4")


@pytest.fixture
def s3_key(s3, monkeypatch) -> S3Server:
    """The server's access key as the authority reads it: from the environment."""
    monkeypatch.setenv(ACCESS_KEY_ID_ENV_VAR, s3.access_key_id)
    monkeypatch.setenv(SECRET_ACCESS_KEY_ENV_VAR, s3.secret)
    return s3


def _storage(s3: S3Server, bucket: str, **extra: object) -> dict:
    return {
        "kind": "s3",
        "s3": {"bucket": bucket, "endpoint_url": s3.url, "max_attempts": 1, **extra},
    }


def _submit(client, clip: bytes, headers):
    return client.post(
        JOBS,
        files={"clip": ("clip.mkv", clip, "application/octet-stream")},
        data=reason(),
        headers=headers,
    )


def _approve(server, client, job_id):
    approved = client.post(
        f"/v1/approvals/{job_id}/approve", json={"reason": WHY}, headers=server.auth("april")
    )
    assert approved.status_code == 200, approved.text


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_s3_store_round_trips_files_privately_and_deletes_a_job(s3, tmp_path):
    bucket = s3.new_bucket()
    settings = S3StorageSettings(bucket=bucket, endpoint_url=s3.url, prefix="p/")
    store = S3ClipStore(settings, tmp_path, s3.access_key_id, s3.secret)
    data = os.urandom(3 * 1024 * 1024 + 5)
    job_id = "ab" * 12
    incoming = store.incoming_path(upload_key(job_id))
    incoming.write_bytes(data)
    store.put(incoming, upload_key(job_id))
    assert not incoming.exists() and store.exists(upload_key(job_id))
    copy = store.local_copy(upload_key(job_id))
    assert copy.read_bytes() == data and stat.S_IMODE(copy.stat().st_mode) == 0o600
    store.release_job_files(job_id)
    assert not copy.exists()

    (tmp_path / "r").write_bytes(data[:1000])
    store.put(tmp_path / "r", result_key(f"{job_id}.mp4"))
    opened = store.open(result_key(f"{job_id}.mp4"))
    assert opened.size == 1000 and b"".join(opened.chunks) == data[:1000] and opened.path is None
    cached = store.cached(result_key(f"{job_id}.mp4"))
    assert cached == tmp_path / "results" / f"{job_id}.mp4" and cached.read_bytes() == data[:1000]
    assert s3.keys(bucket) == [f"p/results/{job_id}.mp4", f"p/uploads/{job_id}.clip"]

    store.delete_job(job_id)
    assert s3.keys(bucket) == [] and _files(tmp_path / "results") == []
    assert not store.exists(upload_key(job_id))
    with pytest.raises(ObjectMissingError, match=f"p/uploads/{job_id}.clip"):
        store.fetch(upload_key(job_id), tmp_path / "gone")
    assert not (tmp_path / "gone").exists()


def test_job_over_http_keeps_upload_then_result_in_the_bucket_same_result_as_directory(
    s3_key, server_factory, tmp_path, evidence_clip
):
    s3 = s3_key
    bucket = s3.new_bucket()
    stored = server_factory(
        tmp_path / "s3",
        storage=_storage(s3, bucket, prefix="uunet/"),
        jobs={"require_approval": True},  # so the upload can be seen waiting in the bucket
    )
    data_dir = stored.services.settings.data_dir
    clip = evidence_clip.read_bytes()
    ivy = stored.auth("ivy")
    with stored.client() as client:
        accepted = _submit(client, clip, ivy)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        # The start-up check's probe object is gone again; the upload waits in the bucket.
        assert s3.keys(bucket) == [f"uunet/uploads/{job_id}.clip"]
        body = s3.client().get_object(Bucket=bucket, Key=f"uunet/uploads/{job_id}.clip")["Body"]
        assert hashlib.sha256(body.read()).hexdigest() == hashlib.sha256(clip).hexdigest()
        assert _files(data_dir / "scratch") == [] and _files(data_dir / "uploads") == []

        _approve(stored, client, job_id)
        job = wait_for_job(client, job_id, ivy)
        assert job["status"] == "succeeded", job
        expected = sorted(f"uunet/results/{job_id}{suffix}" for suffix in RESULT_SUFFIXES)
        assert s3.keys(bucket) == expected  # the upload deleted, the result and its files kept
        assert _files(data_dir / "scratch") == []  # no clip left on the worker's disk
        assert _files(data_dir / "results") == []
        result = client.get(f"{JOBS}/{job_id}/result", headers=ivy)
        faces = client.get(f"{JOBS}/{job_id}/faces", headers=ivy)
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    assert result.headers["content-length"] == str(len(result.content))
    assert f"reconstruction-{job_id}.mp4" in result.headers["content-disposition"]
    assert faces.status_code == 200 and faces.json()["frame_count"] == 12

    directory = server_factory(tmp_path / "directory")
    with directory.client() as client:
        plain_id = _submit(client, clip, directory.auth("ivy")).json()["id"]
        assert wait_for_job(client, plain_id, directory.auth("ivy"))["status"] == "succeeded"
        reference = client.get(f"{JOBS}/{plain_id}/result", headers=directory.auth("ivy"))
    assert reference.status_code == 200 and result.content == reference.content

    assert stored.services.jobs.sweep(datetime.now(timezone.utc) + timedelta(days=2)) == 1
    assert s3.keys(bucket) == [] and _files(data_dir / "results") == []  # bucket and cache


def test_job_whose_upload_or_bucket_is_gone_fails_with_the_reason_audited(
    s3_key, server_factory, evidence_clip
):
    s3 = s3_key
    bucket = s3.new_bucket()
    server = server_factory(storage=_storage(s3, bucket), jobs={"require_approval": True})
    ivy = server.auth("ivy")
    ended = {}
    with server.client() as client:
        first, second = (
            _submit(client, evidence_clip.read_bytes(), ivy).json()["id"] for _ in "12"
        )
        for job_id in (first, second):
            s3.client().delete_object(Bucket=bucket, Key=f"uploads/{job_id}.clip")
            if job_id == second:  # the bucket is gone too
                s3.client().delete_bucket(Bucket=bucket)
            _approve(server, client, job_id)
            job = wait_for_job(client, job_id, ivy)
            ended[job_id] = (job, client.get(f"{JOBS}/{job_id}/result", headers=ivy))
    for job_id, code, status, detail in (
        (first, "stored_object_missing", 500, f"the upload of job {first} is missing"),
        (second, "storage_unavailable", 503, "the clip store cannot be used now"),
    ):
        job, result = ended[job_id]
        assert job["status"] == "failed" and job["error"]["error"] == code
        assert job["error"]["detail"].startswith(detail)
        assert result.status_code == status and result.json()["error"] == code
        assert_no_internals(job["error"])
        records = [r for r in server.services.audit_log.records() if r.job_id == job_id]
        assert [(r.action, r.outcome) for r in records][-2:] == [
            ("reconstruct_clip", "failed"),
            ("download_result", "failed"),  # a 5xx: the job's error, not the caller's
        ]
        assert records[-2].detail.startswith(f"{code}: {detail}")
    assert _files(server.services.settings.data_dir / "scratch") == []


@pytest.fixture
def config(tmp_path, models_dir, monkeypatch):
    """Write an ``authority.yml`` with the given ``storage`` section; the other secrets set."""
    monkeypatch.setenv(camera_key_env_var(CAMERA_ID), CAMERA_KEY.decode())
    monkeypatch.setenv(JWT_SECRET_ENV_VAR, JWT_KEY.decode())
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)

    def write(storage: dict) -> Path:
        path = tmp_path / "authority.yml"
        values = {
            "data_dir": str(tmp_path / "data"),
            "models": {"models_dir": str(models_dir), "providers": "cpu", "shipped_default": False},
            "messages": {"cameras": [CAMERA_ID]},
            "storage": storage,
            "log_level": "ERROR",
            **database_settings(tmp_path / "data"),
        }
        path.write_text(yaml.safe_dump(values))
        return path

    return write


@pytest.mark.parametrize("wrong", ["bucket", "secret", "endpoint", "no_key"])
def test_validate_config_names_what_is_wrong_with_the_bucket(
    wrong, s3_key, config, monkeypatch, capsys
):
    s3 = s3_key
    bucket = s3.new_bucket() if wrong != "bucket" else "no-such-bucket"
    endpoint = s3.url if wrong != "endpoint" else f"http://127.0.0.1:{free_port()}"
    if wrong == "secret":
        monkeypatch.setenv(SECRET_ACCESS_KEY_ENV_VAR, "not-the-secret")
    if wrong == "no_key":
        monkeypatch.delenv(ACCESS_KEY_ID_ENV_VAR)
    storage = {"kind": "s3", "s3": {"bucket": bucket, "endpoint_url": endpoint, "max_attempts": 1}}
    code = run(["--config", str(config(storage)), "validate-config"])
    err = capsys.readouterr().err
    assert code == 2
    expected = {
        "bucket": f"the bucket 'no-such-bucket' does not exist at {s3.url}",
        "secret": f"{s3.url} refused access to the bucket {bucket!r} (SignatureDoesNotMatch)",
        "endpoint": f"cannot reach the S3 endpoint {endpoint}",
        "no_key": "secret 's3-access-key-id' not found: set $UUNET_AUTHORITY_S3_ACCESS_KEY_ID",
    }[wrong]
    assert expected in err, err
    assert "Traceback" not in err


def test_service_start_refuses_a_missing_bucket_before_serving(s3_key, tmp_path, models_dir):
    settings = settings_for(tmp_path, models_dir, storage=_storage(s3_key, "bucket-nobody-made"))
    services = build_services(settings, jwt_key=JWT_KEY, camera_keys=SECRETS.camera_keys)
    try:
        with pytest.raises(StoreUnavailableError, match="'bucket-nobody-made' does not exist at"):
            create_app(settings, SECRETS, services=services)
    finally:
        services.close()
