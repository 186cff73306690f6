"""``/v1/approvals``: dual control of reversals (approvers only, ``jobs.require_approval``).

The rules (who may decide, in which order they are checked) are
:mod:`authority_service.approvals`'s. An approver lists the jobs that wait, and approves or
refuses each with a reason; no route gives an approver a face.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from authority_service.api.deps import ServicesDep, authorize, current_attempt
from authority_service.api.routes.reconstructions import JobId
from authority_service.api.schemas import DecisionIn, ErrorOut, JobOut
from authority_service.approvals import ACTION_BY_DECISION, REASON_MAX, check_decision
from authority_service.errors import PermissionDeniedError
from authority_service.job_store import Decision, JobStatus
from authority_service.service import Services
from authority_service.users import Role, User

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])

_JOB_ID = re.compile(r"[0-9a-f]{24}")

_AUTH = {401: {"model": ErrorOut, "description": "No token, or a bad one."}}
_DECISION_ERRORS = {
    **_AUTH,
    403: {
        "model": ErrorOut,
        "description": "Not an approver (`permission_denied`), or the caller requested the "
        "job (`self_approval`).",
    },
    404: {"model": ErrorOut, "description": "No such job."},
    409: {"model": ErrorOut, "description": "The job is not pending approval (`job_not_pending`)."},
    422: {
        "model": ErrorOut,
        "description": "No reason, or one too short, long or with control characters.",
    },
}


@router.get(
    "",
    response_model=list[JobOut],
    responses={**_AUTH, 403: {"model": ErrorOut, "description": "Only approvers."}},
    summary="Reversal jobs waiting for approval",
)
def list_approvals(
    user: Annotated[
        User, Depends(authorize("list_approvals", {Role.approver}, audit_success=False))
    ],
    services: ServicesDep,
) -> list[JobOut]:
    """Every job ``pending_approval``, oldest first (at most ``jobs.max_queued``: pending jobs
    count against the queue bound), with who asked, the case, the justification and the
    upload's SHA-256. Reading is not audited (it is polled); refusals are."""
    return [JobOut.of(job) for job in services.jobs.store.with_status(JobStatus.pending_approval)]


async def _claimed_reason(request: Request) -> str | None:
    """The body's ``reason`` as sent (cut to its maximum), before it is validated: what a
    refused attempt's audit record shows. ``None`` if the body is not a JSON object with one."""
    try:
        body = await request.json()  # read and cached by FastAPI already: no second read
    except ValueError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason[:REASON_MAX] if isinstance(reason, str) else None


def _decider(decision: str) -> Callable[..., Awaitable[User]]:
    """A dependency: the signed-in approver. The attempt names the job (its case and upload)
    and the reason as sent before the role is checked, so that the refusal of a wrong role is
    audited with them; the role is checked before the body is validated (a wrong role gets
    403 whatever it sent).

    Raises:
        AuthenticationError: as :func:`~authority_service.api.deps.authorize` (401).
        PermissionDeniedError: the user is not an approver (403).
    """
    authenticated = authorize(ACTION_BY_DECISION[decision], None)

    # A default, not Annotated: postponed annotations cannot name this closure's variable.
    async def dependency(
        request: Request,
        services: ServicesDep,
        user: User = Depends(authenticated),  # noqa: B008
    ) -> User:
        job_id = str(request.path_params.get("job_id", ""))
        claimed = await _claimed_reason(request)
        await run_in_threadpool(name_decision, request, services, job_id, claimed)
        require_approver(user)
        return user

    return dependency


def name_decision(request: Request, services: Services, job_id: str, reason: str | None) -> None:
    """Name the job (its case and upload) and the reason as sent in the request's attempt, so
    that a refused decision is audited with them (the console does the same)."""
    attempt = current_attempt(request)
    if _JOB_ID.fullmatch(job_id):
        attempt.job_id = job_id
        job = services.jobs.store.get(job_id)
        if job is not None:
            attempt.case_id, attempt.clip_sha256 = job.case_id, job.clip_sha256
    attempt.justification = reason[:REASON_MAX] if reason is not None else None


def require_approver(user: User) -> None:
    """Refuse anyone but an approver.

    Raises:
        PermissionDeniedError: ``user`` is not an approver (403).
    """
    if user.role is not Role.approver:
        raise PermissionDeniedError(
            f"role {user.role.value!r} may not decide a reversal; it needs approver"
        )


def decide(
    request: Request, services: Services, user: User, job_id: str, reason: str, decision: str
) -> JobOut:
    """Take ``user``'s ``decision`` on the job, audited before it takes effect.

    Raises:
        PermissionDeniedError / NotFoundError / ConflictError: as
            :func:`authority_service.approvals.check_decision`, or a race lost
            (``job_not_pending``).
    """
    attempt = current_attempt(request)
    attempt.justification = reason
    job = services.jobs.store.get(job_id)
    check_decision(job, job_id, user, decision)  # refusals audited by the error handlers
    assert job is not None
    outcome = "queued" if decision == Decision.approved else "ended, its upload deleted"
    services.record(
        attempt.entry("granted", f"{job.kind} job of {job.owner} {decision}: {outcome}")
    )
    attempt.recorded = True
    try:
        decided = services.jobs.decide(job.id, decision, user.name, reason)
    except BaseException:
        attempt.recorded = False  # a race lost (decided or expired meanwhile): audited too
        raise
    if decision == Decision.refused:
        services.metrics.reversals.labels(job.kind, "refused").inc()
    return JobOut.of(decided)


@router.post(
    "/{job_id}/approve",
    response_model=JobOut,
    responses=_DECISION_ERRORS,
    summary="Approve a pending reversal (it is queued)",
)
def approve_job(
    request: Request,
    job_id: JobId,
    body: DecisionIn,
    user: Annotated[User, Depends(_decider(Decision.approved))],
    services: ServicesDep,
) -> JobOut:
    """Queue the job; it then runs as any job, and its final audit record names the approver.
    Audited (``approve_job``, the reason as the record's justification) before the response,
    refusals too. Raises the errors of :func:`authority_service.approvals.check_decision`."""
    return decide(request, services, user, job_id, body.reason, Decision.approved)


@router.post(
    "/{job_id}/refuse",
    response_model=JobOut,
    responses=_DECISION_ERRORS,
    summary="Refuse a pending reversal (it ends `refused`)",
)
def refuse_job(
    request: Request,
    job_id: JobId,
    body: DecisionIn,
    user: Annotated[User, Depends(_decider(Decision.refused))],
    services: ServicesDep,
) -> JobOut:
    """End the job ``refused`` and delete its upload; nothing is reversed. Audited
    (``refuse_job``, the reason as the record's justification) before the response, refusals
    too. Raises the errors of :func:`authority_service.approvals.check_decision`."""
    return decide(request, services, user, job_id, body.reason, Decision.refused)
