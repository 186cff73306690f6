"""authority_service.approvals and the job manager's side of dual control: who may decide in
which order, pending jobs never run (not even after a restart), count against the queue bound,
expire; a refusal deletes the upload; a decision is taken once."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone

import pytest

from authority_service.approvals import check_decision
from authority_service.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ServiceBusyError,
)
from authority_service.job_store import Decision, JobStatus
from authority_service.service import Services, build_services
from authority_service.users import Role
from tests.authority_service.conftest import SECRETS, settings_for

#: Every test runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("any_backend")

APPROVAL = {"require_approval": True}


def _services(tmp_path, models_dir, **jobs) -> Services:
    settings = settings_for(tmp_path, models_dir, jobs={**APPROVAL, **jobs})
    return build_services(settings, camera_keys=SECRETS.camera_keys)


def _submit(services: Services, clip, owner="ivy"):
    job_id = services.jobs.new_job_id()
    shutil.copy(clip, services.jobs.upload_path(job_id))
    return services.jobs.submit(
        job_id=job_id,
        owner=owner,
        case_id="CASE-7",
        justification="Needed for the robbery of 12 May.",
        clip_sha256="00" * 32,
        clip_bytes=clip.stat().st_size,
        frames_total=12,
    )


def _user(services: Services, name: str, role: Role):
    return services.users.get(name) or services.users.add(name, role, "$argon2id$not-used")


def _wait(services: Services, job_id: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while (job := services.jobs.store.get(job_id)).status in (JobStatus.queued, "running"):
        assert time.monotonic() < deadline, f"job still {job.status}"
        time.sleep(0.05)
    return job


def test_check_decision_checks_role_then_job_then_requester_then_state(
    tmp_path, models_dir, evidence_clip
):
    services = _services(tmp_path, models_dir)
    job = _submit(services, evidence_clip)
    investigator = _user(services, "ivy", Role.investigator)
    admin = _user(services, "adam", Role.admin)
    approver = _user(services, "april", Role.approver)
    try:
        for who in (investigator, admin):  # a wrong role learns nothing about the job
            with pytest.raises(PermissionDeniedError) as info:
                check_decision(None, "f" * 24, who, Decision.approved)
            assert info.value.code == "permission_denied"
        with pytest.raises(NotFoundError):
            check_decision(None, "f" * 24, approver, Decision.approved)
        requester_now_approver = services.users.update("ivy", role=Role.approver)
        for decision in (Decision.approved, Decision.refused):
            with pytest.raises(PermissionDeniedError) as info:
                check_decision(job, job.id, requester_now_approver, decision)
            assert info.value.code == "self_approval"
        assert check_decision(job, job.id, approver, Decision.approved) is job
        services.jobs.decide(job.id, Decision.approved, "april", "Warrant 7 covers it.")
        with pytest.raises(ConflictError) as info:
            check_decision(services.jobs.store.get(job.id), job.id, approver, Decision.refused)
        assert info.value.code == "job_not_pending"
    finally:
        services.close()


def test_pending_job_never_runs_even_after_a_restart_until_approved(
    tmp_path, models_dir, evidence_clip
):
    first = _services(tmp_path, models_dir)
    first.jobs.start()
    job = _submit(first, evidence_clip)
    time.sleep(1.0)
    first.jobs.stop()
    assert first.jobs.store.get(job.id).status == JobStatus.pending_approval
    first.close()

    second = _services(tmp_path, models_dir)  # same data directory: a restart
    second.jobs.start()
    try:
        time.sleep(1.0)
        waiting = second.jobs.store.get(job.id)
        assert waiting.status == JobStatus.pending_approval and waiting.started_at is None
        assert (
            second.metrics.registry.get_sample_value("uunet_authority_jobs_pending_approval") == 1
        )
        second.jobs.decide(job.id, Decision.approved, "april", "Warrant 7 covers it.")
        done = _wait(second, job.id)
    finally:
        second.jobs.stop()
    assert done.status == JobStatus.succeeded and done.decided_by == "april"
    assert second.metrics.registry.get_sample_value("uunet_authority_jobs_pending_approval") == 0
    final = second.audit_log.records()[-1]
    assert (final.action, final.outcome) == ("reconstruct_clip", "completed")
    assert "approved by april" in final.detail
    second.close()


def test_refusal_deletes_the_upload_and_a_decision_is_taken_once(
    tmp_path, models_dir, evidence_clip
):
    services = _services(tmp_path, models_dir)
    job = _submit(services, evidence_clip)
    try:
        refused = services.jobs.decide(job.id, Decision.refused, "april", "No warrant covers it.")
        assert refused.status == JobStatus.refused and refused.finished_at
        assert (refused.decided_by, refused.decision_reason) == ("april", "No warrant covers it.")
        assert not services.jobs.upload_path(job.id).exists()
        with pytest.raises(ConflictError):
            services.jobs.decide(job.id, Decision.approved, "april2", "Changed my mind now.")
        assert services.jobs.store.get(job.id).status == JobStatus.refused
    finally:
        services.close()


def test_pending_jobs_count_against_the_queue_bound_and_expire(tmp_path, models_dir, evidence_clip):
    services = _services(tmp_path, models_dir, max_queued=2)
    try:
        first = _submit(services, evidence_clip)
        _submit(services, evidence_clip)
        with pytest.raises(ServiceBusyError):
            services.jobs.ensure_capacity()
        later = datetime.now(timezone.utc) + timedelta(seconds=services.settings.jobs.ttl_s + 1)
        assert services.jobs.sweep(now=later) == 2
        assert not services.jobs.upload_path(first.id).exists()
        services.jobs.ensure_capacity()  # room again
        expired = services.jobs.store.get(first.id)
        assert expired.status == JobStatus.expired and expired.approval_required
        record = [r for r in services.audit_log.records() if r.job_id == first.id][-1]
        assert record.action == "expire_job" and "unapproved" in record.detail
    finally:
        services.close()
