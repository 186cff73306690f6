"""authority_service.clip_store, the directory kind (the default): the keys are the files of
before (``data_dir/uploads/<job>.clip``, ``data_dir/results/<name>``), and a job whose upload is
not there fails with that reason, audited. (The S3 kind: test_s3_store.py.)"""

from __future__ import annotations

import shutil
import time

import pytest

from authority_service.clip_store import (
    DirectoryClipStore,
    ObjectMissingError,
    result_key,
    upload_key,
)
from authority_service.jobs import JobStatus
from authority_service.service import build_services
from tests.authority_service.conftest import SECRETS, settings_for


def test_directory_store_keys_are_the_data_directory_files(tmp_path):
    store = DirectoryClipStore(tmp_path / "uploads", tmp_path / "results")
    job_id = "0f" * 12
    upload = store.incoming_path(upload_key(job_id))
    assert upload == tmp_path / "uploads" / f"{job_id}.clip"
    upload.write_bytes(b"clip")
    store.put(upload, upload_key(job_id))  # already in place: kept as it is
    assert store.local_copy(upload_key(job_id)) == upload and upload.read_bytes() == b"clip"
    partial = store.work_dir / f"{job_id}.partial"
    partial.write_bytes(b"result")
    store.put(partial, result_key(f"{job_id}.mp4"))  # renamed into place, as before
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [f"{job_id}.mp4"]
    opened = store.open(result_key(f"{job_id}.mp4"))
    assert opened.path == tmp_path / "results" / f"{job_id}.mp4" and opened.size == 6
    assert b"".join(opened.chunks) == b"result"
    store.delete_job(job_id)
    assert not any((tmp_path / "uploads").iterdir()) and not any((tmp_path / "results").iterdir())
    with pytest.raises(ObjectMissingError) as missing:
        store.local_copy(upload_key(job_id))
    assert missing.value.detail == f"the upload of job {job_id} is missing"
    with pytest.raises(ValueError, match="not a clip store key"):
        store.file_of("uploads/../authority.sqlite3")


def test_job_whose_upload_is_missing_fails_with_that_reason_audited(
    tmp_path, models_dir, evidence_clip
):
    services = build_services(settings_for(tmp_path, models_dir), camera_keys=SECRETS.camera_keys)
    job_id = services.jobs.new_job_id()
    shutil.copy(evidence_clip, services.jobs.upload_path(job_id))
    services.jobs.submit(
        job_id=job_id,
        owner="ivy",
        case_id="CASE-1",
        justification="Needed for the robbery of 12 May.",
        clip_sha256="00" * 32,
        clip_bytes=evidence_clip.stat().st_size,
        frames_total=12,
    )
    services.jobs.upload_path(job_id).unlink()  # lost from the shared directory
    services.jobs.start()
    try:
        deadline = time.monotonic() + 30
        while (job := services.jobs.store.get(job_id)).status in (JobStatus.queued, "running"):
            assert time.monotonic() < deadline, job.status
            time.sleep(0.05)
    finally:
        services.jobs.stop()
    assert job.status == JobStatus.failed and job.error_code == "stored_object_missing"
    assert job.error_detail == f"the upload of job {job_id} is missing"
    (record,) = [r for r in services.audit_log.records() if r.job_id == job_id]
    assert (record.action, record.outcome) == ("reconstruct_clip", "failed")
    assert record.detail == f"stored_object_missing: the upload of job {job_id} is missing"
    services.close()
