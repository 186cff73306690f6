"""authority_service.jobs: jobs survive a restart, expire with their files, fail closed, audited."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone

import pytest

from authority_service.errors import ServiceBusyError
from authority_service.jobs import JobStatus
from authority_service.service import Services, build_services
from tests.authority_service.conftest import SECRETS, settings_for

#: Every test runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("any_backend")


def _services(tmp_path, models_dir, **overrides) -> Services:
    settings = settings_for(tmp_path, models_dir, **overrides)
    return build_services(settings, camera_keys=SECRETS.camera_keys)


def _submit(services: Services, clip, case_id="CASE-1"):
    job_id = services.jobs.new_job_id()
    shutil.copy(clip, services.jobs.upload_path(job_id))
    return services.jobs.submit(
        job_id=job_id,
        owner="ivy",
        case_id=case_id,
        justification="Needed for the robbery of 12 May.",
        clip_sha256="00" * 32,
        clip_bytes=clip.stat().st_size,
        frames_total=12,
    )


def _wait(services: Services, job_id: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while (job := services.jobs.store.get(job_id)).status in (JobStatus.queued, "running"):
        assert time.monotonic() < deadline, f"job still {job.status}"
        time.sleep(0.05)
    return job


def test_job_interrupted_by_a_crash_runs_again_after_restart(tmp_path, models_dir, evidence_clip):
    first = _services(tmp_path, models_dir)
    job = _submit(first, evidence_clip)  # queued, but no worker ever started
    first.jobs.store.mark_running(job.id)  # the process died while running it
    first.close()

    second = _services(tmp_path, models_dir)  # same data directory: a restart
    second.jobs.start()
    try:
        done = _wait(second, job.id)
    finally:
        second.jobs.stop()
    assert done.status == JobStatus.succeeded and done.report["frames"] == 12
    assert second.jobs.result_path(done).is_file()
    assert not second.jobs.upload_path(job.id).exists()  # the upload is not kept once done
    actions = [(r.action, r.outcome, r.job_id) for r in second.audit_log.records()]
    assert actions == [("reconstruct_clip", "completed", job.id)]
    second.close()


def test_shutdown_mid_job_requeues_it(tmp_path, models_dir, evidence_clip):
    services = _services(tmp_path, models_dir)
    job = _submit(services, evidence_clip)
    services.jobs._stopping.set()  # as stop() does, before the worker polls
    services.jobs._run(services.jobs.store.get(job.id))
    assert services.jobs.store.get(job.id).status == JobStatus.queued
    assert services.jobs.upload_path(job.id).is_file()
    services.close()


def test_expired_jobs_lose_upload_and_result_and_are_audited(tmp_path, models_dir, evidence_clip):
    services = _services(tmp_path, models_dir)
    services.jobs.start()
    try:
        job = _wait(services, _submit(services, evidence_clip).id)
    finally:
        services.jobs.stop()
    result = services.jobs.result_path(job)
    assert result.is_file()
    assert services.jobs.sweep() == 0  # not yet due
    later = datetime.now(timezone.utc) + timedelta(seconds=services.settings.jobs.ttl_s + 1)
    assert services.jobs.sweep(now=later) == 1
    assert not result.exists()
    expired = services.jobs.store.get(job.id)
    assert expired.status == JobStatus.expired and expired.result_name is None
    last = services.audit_log.records()[-1]
    assert (last.actor, last.action, last.job_id) == ("system", "expire_job", job.id)
    assert services.audit_log.verify().valid
    services.close()


def test_bad_clip_ends_failed_with_its_code_and_a_refusal_record(tmp_path, models_dir):
    services = _services(tmp_path, models_dir)
    text = tmp_path / "notes.txt"
    text.write_text("no video here\n" * 50)
    services.jobs.start()
    try:
        job = _wait(services, _submit(services, text).id)
    finally:
        services.jobs.stop()
    assert job.status == JobStatus.failed and job.error_code == "not_a_video"
    record = services.audit_log.records()[-1]
    assert record.outcome == "refused" and record.detail.startswith("not_a_video")
    services.close()


def test_queue_bound_refuses_with_service_busy(tmp_path, models_dir, evidence_clip):
    services = _services(tmp_path, models_dir, jobs={"max_queued": 2})
    _submit(services, evidence_clip)
    _submit(services, evidence_clip)
    with pytest.raises(ServiceBusyError) as info:
        services.jobs.ensure_capacity()
    assert info.value.extra["retry_after_s"] == 30
    services.close()
