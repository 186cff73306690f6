"""The console's dependency: the signed-in user of a session cookie, audited like a bearer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from authority_service.api.deps import ServicesDep, admit, check_role
from authority_service.console.render import ConsoleContext
from authority_service.console.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    check_csrf,
)
from authority_service.console.sessions import SessionStore
from authority_service.errors import AuthenticationError
from authority_service.users import Role, User

__all__ = ["console_user", "sessions_of", "submitted_csrf"]

SIGN_IN_HINT = "sign in to the console first"


def sessions_of(request: Request) -> SessionStore:
    """The app's console sessions."""
    return request.app.state.console_sessions


async def submitted_csrf(request: Request) -> str | None:
    """The CSRF token a request carries: its header, else a urlencoded form's ``csrf`` field
    (a multipart body is never parsed for it: uploads send the header)."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def console_user(
    action: str,
    roles: set[Role] | None,
    *,
    audit_success: bool = True,
    reversal_kind: str | None = None,
    csrf: bool = False,
) -> Callable[..., Awaitable[User]]:
    """A dependency: start the audited attempt of ``action`` and authenticate the session's
    token as :func:`~authority_service.api.deps.authorize` authenticates a bearer (the same
    refusals, audited the same way); then check the CSRF token (``csrf``: state-changing
    requests) and the role. A session whose token is refused (expired, revoked) is closed.

    Raises:
        AuthenticationError: no session, or its token expired or was revoked (401).
        CsrfError: ``csrf`` and the token is missing or wrong, or another site sent it (403).
        PermissionDeniedError: the user's role is not in ``roles`` (403).
    """

    async def dependency(request: Request, services: ServicesDep) -> User:
        store = sessions_of(request)
        session_id = request.cookies.get(SESSION_COOKIE)
        session = store.get(session_id)
        try:
            user = admit(
                request,
                services,
                session.token if session else None,
                action=action,
                roles=None,
                audit_success=audit_success,
                reversal_kind=reversal_kind,
                missing=SIGN_IN_HINT,
            )
        except AuthenticationError:
            store.close(session_id)
            raise
        assert session is not None
        request.state.console = ConsoleContext(user, session)
        if csrf:
            check_csrf(request, session.csrf, await submitted_csrf(request))
        check_role(user, action, roles)
        return user

    return dependency
