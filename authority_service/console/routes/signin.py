"""Sign in, sign out, and the home page of each role."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from authority_service.api.deps import (
    ServicesDep,
    client_address,
    count_unauthenticated_refusal,
    current_attempt,
)
from authority_service.api.errors import Attempt
from authority_service.api.routes.auth import check_login
from authority_service.console.deps import console_user, sessions_of
from authority_service.console.forms import field
from authority_service.console.render import base_url, login_page, page
from authority_service.console.security import (
    LOGIN_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    CsrfError,
    check_csrf,
    clear_cookie,
    set_cookie,
)
from authority_service.job_store import JobStatus
from authority_service.users import Role, User

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def sign_in_form(request: Request) -> HTMLResponse:
    """The sign-in form (``?signed_out=1`` after signing out)."""
    message = "You have signed out." if request.query_params.get("signed_out") else None
    return login_page(request, message=message)


@router.post("/login")
async def sign_in(request: Request, services: ServicesDep) -> RedirectResponse:
    """Check the user name and password as ``POST /v1/token`` does (the same rate limit,
    lockout and audit record ``login``, detail ``console session``), then open a session.

    Raises:
        CsrfError: the form's CSRF nonce is not its cookie's (403, audited as a refused login).
        RateLimitedError / AuthenticationError: see
            :func:`~authority_service.api.routes.auth.check_login`.
    """
    form = await request.form()
    username, password = field(form, "username"), form.get("password")
    attempt = Attempt(
        action="login", client=client_address(request), actor=username[:64] or "anonymous"
    )
    request.state.attempt = attempt
    try:
        check_csrf(request, request.cookies.get(LOGIN_COOKIE), field(form, "csrf"))
    except CsrfError as exc:
        count_unauthenticated_refusal(services, attempt, exc)
        raise
    user = await run_in_threadpool(
        check_login,
        request,
        services,
        username,
        password if isinstance(password, str) else "",
        detail="console session",
    )
    store = sessions_of(request)
    store.close(request.cookies.get(SESSION_COOKIE))  # never keep a session id across sign-ins
    session_id, session = store.open(user)
    response = RedirectResponse(f"{base_url(request)}/", status_code=303)
    max_age = int(session.expires_at - time.time())
    set_cookie(response, request, SESSION_COOKIE, session_id, max_age)
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


@router.post("/logout")
def sign_out(
    request: Request,
    user: Annotated[User, Depends(console_user("logout", None, csrf=True))],
    services: ServicesDep,
) -> RedirectResponse:
    """End the session (server-side: its cookie is worthless afterwards); audited."""
    sessions_of(request).close(request.cookies.get(SESSION_COOKIE))
    attempt = current_attempt(request)
    services.record(attempt.entry("granted", "console session ended"))
    attempt.recorded = True
    response = RedirectResponse(f"{base_url(request)}/login?signed_out=1", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    user: Annotated[User, Depends(console_user("view_console", None, audit_success=False))],
    services: ServicesDep,
) -> HTMLResponse:
    """What the signed-in role can do; an investigator's latest requests."""
    jobs = services.jobs.store.owned_by(user.name) if user.role is Role.investigator else []
    pending = (
        services.jobs.store.count(JobStatus.pending_approval) if user.role is Role.approver else 0
    )
    return page(
        request,
        "home.html",
        jobs=jobs,
        pending=pending,
        require_approval=services.jobs.require_approval,
    )
