"""Dependencies of the routes: the services, the caller, and role checks that audit refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from authority_service.api.errors import STATUS_BY_CODE, Attempt, refusal_detail
from authority_service.errors import AuthenticationError, AuthorityError, PermissionDeniedError
from authority_service.refusals import RefusalKey
from authority_service.service import Services
from authority_service.users import Role, User

__all__ = [
    "ServicesDep",
    "admit",
    "authorize",
    "check_role",
    "client_address",
    "count_unauthenticated_refusal",
    "current_attempt",
]

TOKEN_URL = "/v1/token"
bearer_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def client_address(request: Request) -> str:
    """The peer address (the proxy's, unless uvicorn trusts it to forward the client's)."""
    return request.client.host if request.client else "unknown"


def current_attempt(request: Request) -> Attempt:
    """The attempt the route's :func:`authorize` dependency started."""
    return request.state.attempt


def count_unauthenticated_refusal(
    services: Services, attempt: Attempt, exc: AuthorityError
) -> None:
    """Count the refusal ``exc`` of a caller who is not signed in (no or a bad token, a failed
    or rate-limited login) in its window (:mod:`authority_service.refusals`).

    The first of a window is left to the error handlers, which record it before the response as
    always; the next ones are only counted (the attempt is marked recorded), their count written
    as one record when the window closes.
    """
    status = STATUS_BY_CODE.get(exc.code, 400)
    entry = attempt.entry("refused", refusal_detail(status, exc.code, exc.detail))
    if services.refusals.absorb(
        RefusalKey(attempt.client or "unknown", attempt.action, exc.code), entry
    ):
        attempt.recorded = True
        if attempt.reversal_kind is not None:
            services.metrics.reversals.labels(attempt.reversal_kind, "refused").inc()


def admit(
    request: Request,
    services: Services,
    token: str | None,
    *,
    action: str,
    roles: set[Role] | None,
    audit_success: bool = True,
    reversal_kind: str | None = None,
    missing: str = f"a bearer token is required: log in at {TOKEN_URL}",
) -> User:
    """Start the audited attempt of ``action``, authenticate ``token``, check the role.

    What :func:`authorize` does for a bearer token; the console
    (:mod:`authority_service.console`) calls it with the token of a signed-in session, so both
    authenticate, refuse and audit alike. ``missing`` is the detail of the refusal when there
    is no token.

    Raises:
        AuthenticationError: no token, or a bad/expired/revoked one (401).
        PermissionDeniedError: the user's role is not in ``roles`` (403).
    """
    attempt = Attempt(
        action=action,
        client=client_address(request),
        audit_success=audit_success,
        reversal_kind=reversal_kind,
    )
    request.state.attempt = attempt
    if not token:
        refused = AuthenticationError(missing)
        count_unauthenticated_refusal(services, attempt, refused)
        raise refused
    assert services.tokens is not None
    try:
        user = services.tokens.authenticate(token, services.users)
    except AuthenticationError as exc:
        claimed = services.tokens.unverified_subject(token)
        if claimed:
            attempt.actor = f"unverified:{claimed}"
        count_unauthenticated_refusal(services, attempt, exc)
        raise
    attempt.actor, attempt.role = user.name, user.role.value
    check_role(user, action, roles)
    return user


def check_role(user: User, action: str, roles: set[Role] | None) -> None:
    """Refuse ``user`` unless their role is in ``roles`` (``None``: any role).

    Raises:
        PermissionDeniedError: it is not (403).
    """
    if roles is not None and user.role not in roles:
        needed = " or ".join(sorted(r.value for r in roles))
        raise PermissionDeniedError(
            f"role {user.role.value!r} may not {action.replace('_', ' ')}; it needs {needed}"
        )


def authorize(
    action: str,
    roles: set[Role] | None,
    *,
    audit_success: bool = True,
    reversal_kind: str | None = None,
) -> Callable[..., User]:
    """A dependency: start the audited attempt, authenticate the bearer, check the role
    (:func:`admit`).

    ``roles=None`` admits any authenticated user. With ``audit_success=False`` only refusals
    are recorded (status polling would otherwise flood the log).

    Raises:
        AuthenticationError: no token, or a bad/expired/revoked one (401).
        PermissionDeniedError: the user's role is not in ``roles`` (403).
    """

    def dependency(
        request: Request,
        services: ServicesDep,
        token: Annotated[str | None, Depends(bearer_scheme)],
    ) -> User:
        return admit(
            request,
            services,
            token,
            action=action,
            roles=roles,
            audit_success=audit_success,
            reversal_kind=reversal_kind,
        )

    return dependency
