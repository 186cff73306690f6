"""The approver's inbox: jobs waiting for a second user, approved or refused with a reason.

The same functions as ``/v1/approvals`` (:mod:`authority_service.api.routes.approvals`): the
attempt names the job and the reason before the role is checked, the decision is audited
(``approve_job`` / ``refuse_job``) before it takes effect, and the requester can never decide
their own job (``self_approval``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from authority_service.api.deps import ServicesDep
from authority_service.api.routes.approvals import (
    decide,
    list_approvals,
    name_decision,
    require_approver,
)
from authority_service.api.routes.reconstructions import JobId
from authority_service.api.schemas import DecisionIn
from authority_service.approvals import ACTION_BY_DECISION, REASON_MAX, REASON_MIN
from authority_service.console.deps import console_user, submitted_csrf
from authority_service.console.forms import field, validated
from authority_service.console.render import ConsoleContext, base_url, page
from authority_service.console.security import PREFIX, check_csrf
from authority_service.job_store import Decision
from authority_service.users import Role, User

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/approvals", response_class=HTMLResponse)
def inbox(
    request: Request,
    user: Annotated[
        User, Depends(console_user("list_approvals", {Role.approver}, audit_success=False))
    ],
    services: ServicesDep,
) -> HTMLResponse:
    """Every job pending approval, oldest first, with approve and refuse forms."""
    jobs = list_approvals(user, services)
    return page(request, "approvals.html", jobs=jobs, reason_min=REASON_MIN, reason_max=REASON_MAX)


def _decision_route(decision: str) -> Callable[..., Awaitable[RedirectResponse]]:
    decider = console_user(ACTION_BY_DECISION[decision], None)

    # A default, not Annotated: postponed annotations cannot name this closure's variable.
    async def route(
        request: Request,
        job_id: JobId,
        services: ServicesDep,
        user: User = Depends(decider),  # noqa: B008
    ) -> RedirectResponse:
        """Approve or refuse a pending job with the form's reason; back to the inbox.

        Raises:
            CsrfError / PermissionDeniedError / NotFoundError / ConflictError /
            InvalidRequestError: refused as ``/v1/approvals/{id}/...`` refuses, audited.
        """
        form = await request.form()
        reason = field(form, "reason")
        await run_in_threadpool(name_decision, request, services, job_id, reason)
        console: ConsoleContext = request.state.console
        check_csrf(request, console.session.csrf, await submitted_csrf(request))
        require_approver(user)
        body = validated(DecisionIn, reason=reason)
        job = await run_in_threadpool(
            decide, request, services, user, job_id, body.reason, decision
        )
        verb = "approved: it is queued" if decision == Decision.approved else "refused"
        console.session.flash = f"Job {job.id} (case {job.case_id}, {job.owner}) {verb}."
        return RedirectResponse(f"{base_url(request)}/approvals", status_code=303)

    return route


router.add_api_route(
    "/approvals/{job_id}/approve", _decision_route(Decision.approved), methods=["POST"]
)
router.add_api_route(
    "/approvals/{job_id}/refuse", _decision_route(Decision.refused), methods=["POST"]
)
