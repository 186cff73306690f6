"""Dual control of reversals: with ``jobs.require_approval`` a second user decides each job.

A clip job, or a frame sent to ``POST /v1/frames:reconstruct`` (then stored as a job of kind
``frame``), starts ``pending_approval``. A user with the role ``approver`` approves it (it is
queued and runs as any job) or refuses it (``refused``, terminal, its upload deleted), each time
with a reason. An approver sees the request (requester, case id, justification, the upload's
SHA-256 and size), never a face: only the requester downloads the result.

Who may decide, checked in this order by :func:`check_decision`:

1. a user with the role ``approver`` (else 403 ``permission_denied``);
2. on a job that exists (else 404 ``not_found``);
3. that they did not request themselves (else 403 ``self_approval``), whatever role they hold
   now: an investigator later made an approver still cannot decide their own jobs;
4. and that is still ``pending_approval`` (else 409 ``job_not_pending``).

Every decision and every refused attempt is audited before the response (actions
``approve_job`` and ``refuse_job``, the approver's reason as the record's ``justification``), and
the job's final record (``reconstruct_clip``/``reconstruct_frame``) names the approver.
"""

from __future__ import annotations

from authority_service.errors import ConflictError, NotFoundError, PermissionDeniedError
from authority_service.job_store import Decision, Job, JobStatus
from authority_service.users import Role, User

__all__ = [
    "ACTION_BY_DECISION",
    "REASON_MAX",
    "REASON_MIN",
    "REASON_PATTERN",
    "check_decision",
]

#: Bounds of an approver's reason (a sentence, like a justification).
REASON_MIN = 10
REASON_MAX = 1000
#: No control characters (C0, DEL, C1, Unicode line and paragraph separators): a reason is one
#: line in the audit record and in the service log.
REASON_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
#: The audit action of each decision.
ACTION_BY_DECISION = {Decision.approved: "approve_job", Decision.refused: "refuse_job"}
_VERB = {Decision.approved: "approve", Decision.refused: "refuse"}


def check_decision(job: Job | None, job_id: str, user: User, decision: str) -> Job:
    """Return ``job`` if ``user`` may take ``decision`` (``approved``/``refused``) on it now.

    Raises:
        PermissionDeniedError: ``permission_denied``: ``user`` is not an approver;
            ``self_approval``: ``user`` requested the job.
        NotFoundError: there is no job ``job_id``.
        ConflictError: ``job_not_pending``: the job is not waiting for a decision.
    """
    verb = _VERB[decision]
    if user.role is not Role.approver:
        raise PermissionDeniedError(
            f"role {user.role.value!r} may not {verb} a reversal; it needs approver"
        )
    if job is None:
        raise NotFoundError(f"no reconstruction job {job_id!r}")
    if job.owner == user.name:
        raise PermissionDeniedError(
            f"{user.name!r} requested job {job.id}: another user with the role approver must "
            f"{verb} it",
            code="self_approval",
        )
    if job.status != JobStatus.pending_approval:
        raise ConflictError(
            f"job {job.id} is {job.status}, not pending approval: there is nothing to {verb}",
            code="job_not_pending",
            job_status=job.status,
        )
    return job
