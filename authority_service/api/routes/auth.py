"""``/v1/token`` (OAuth2 password flow) and ``/v1/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from authority_service.api.deps import (
    ServicesDep,
    authorize,
    client_address,
    count_unauthenticated_refusal,
)
from authority_service.api.errors import Attempt
from authority_service.api.schemas import ErrorOut, TokenOut, UserOut
from authority_service.errors import AuthenticationError, RateLimitedError
from authority_service.service import Services
from authority_service.users import User

router = APIRouter(prefix="/v1", tags=["authentication"])


def check_login(
    request: Request,
    services: Services,
    username: str,
    password: str,
    *,
    detail: str | None = None,
) -> User:
    """Check a user name and password as ``POST /v1/token`` does, and audit it as ``login``.

    Rate-limited per client address, and failed logins lock out one user name at one client
    address with growing back-off (an admin may lift it: ``POST /v1/users/{name}/unlock``).
    Refusals are audited by the error handlers (counted per window); a granted login is
    recorded here, with ``detail`` (the console says ``"console session"``).

    Raises:
        RateLimitedError: over the per-client limit, or the pair is locked out (429).
        AuthenticationError: ``invalid_credentials``: unknown user, wrong password, or a
            disabled user (401, the same for all three).
    """
    assert services.login_limiter is not None
    client = client_address(request)
    attempt = Attempt(action="login", client=client, actor=username[:64] or "anonymous")
    request.state.attempt = attempt
    try:
        services.login_limiter.check(client, username)
    except RateLimitedError as exc:
        count_unauthenticated_refusal(services, attempt, exc)
        raise
    user = services.users.get(username)
    if not services.passwords.verify(user, password) or user is None or user.disabled:
        services.login_limiter.record_failure(client, username)
        services.metrics.logins.labels("refused").inc()
        refused = AuthenticationError("wrong user name or password", code="invalid_credentials")
        count_unauthenticated_refusal(services, attempt, refused)
        raise refused
    services.login_limiter.record_success(client, username)
    attempt.role = user.role.value
    services.record(attempt.entry("granted", detail))
    attempt.recorded = True
    services.metrics.logins.labels("granted").inc()
    return user


@router.post(
    "/token",
    response_model=TokenOut,
    responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}},
    summary="Exchange a user name and password for a short-lived bearer token",
)
def issue_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    services: ServicesDep,
) -> TokenOut:
    """OAuth2 password flow. Rate-limited per client address, and failed logins lock out one
    user name at one client address with growing back-off (429 with ``Retry-After``; an admin
    may lift it: ``POST /v1/users/{name}/unlock``); every attempt, granted or refused, is
    audited as ``login`` (:func:`check_login`)."""
    assert services.tokens is not None
    user = check_login(request, services, form.username, form.password)
    token, ttl = services.tokens.issue(user)
    return TokenOut(access_token=token, expires_in=ttl, role=user.role)


@router.get(
    "/me",
    response_model=UserOut,
    responses={401: {"model": ErrorOut}},
    summary="Who the bearer token belongs to",
)
def who_am_i(
    user: Annotated[User, Depends(authorize("whoami", None, audit_success=False))],
) -> UserOut:
    return UserOut.of(user)
