"""The console's cookies, CSRF checks and response headers.

* Cookies are ``HttpOnly``, ``SameSite=Strict``, ``Path=/console``, and ``Secure`` when the
  request came over HTTPS (directly, or forwarded by a proxy that uvicorn trusts:
  ``server.forwarded_allow_ips``). The session cookie lasts as long as the session's token.
* CSRF: every state-changing request carries the session's CSRF token, as the form field
  ``csrf`` (forms) or the ``X-CSRF-Token`` header (the scripts' requests; uploads must use the
  header: it is checked before the body is read). The sign-in form, before any session, carries
  the value of a short-lived ``uunet_console_login`` cookie (double submit). A request whose
  ``Origin`` or ``Sec-Fetch-Site`` says another site sent it is refused too. Refusals: 403
  ``csrf_failed``, audited.
* Headers: :class:`SecurityHeaders` sets ``Cache-Control: no-store`` and
  ``X-Content-Type-Options: nosniff`` on every response of the service (its API responses show
  faces and audit records too), and on the console's a strict Content-Security-Policy (no
  inline script or style), ``Referrer-Policy: no-referrer`` and ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authority_service.api.errors import ErrorRenderer
from authority_service.errors import PermissionDeniedError

__all__ = [
    "CONSOLE_HEADERS",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOGIN_COOKIE",
    "PREFIX",
    "SESSION_COOKIE",
    "CsrfError",
    "SecurityHeaders",
    "check_csrf",
    "check_origin",
    "clear_cookie",
    "new_login_nonce",
    "set_cookie",
]

PREFIX = "/console"
SESSION_COOKIE = "uunet_console"
LOGIN_COOKIE = "uunet_console_login"
LOGIN_COOKIE_MAX_AGE = 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
#: On every response of the service.
EVERY_RESPONSE = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
#: On every console response, beside those.
CONSOLE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


class CsrfError(PermissionDeniedError):
    """A state-changing console request without the right CSRF token, or from another site."""

    code = "csrf_failed"


def console_path(scope: Scope) -> bool:
    """Whether the request is for the console (``/console`` and below, after any root path)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path == PREFIX or path.startswith(PREFIX + "/")


class SecurityHeaders:
    """ASGI middleware: the headers above, and the console's error pages.

    On a console request it puts ``render_error`` into the request's state, so that the error
    handlers (:func:`authority_service.api.errors.refusal_response`) render their refusal as a
    page (or JSON, for the console's scripts) after auditing it as always.
    """

    def __init__(self, app: ASGIApp, render_error: ErrorRenderer) -> None:
        self.app = app
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        console = console_path(scope)
        if console:
            scope.setdefault("state", {})["render_error"] = self.render_error
        extra = {**EVERY_RESPONSE, **(CONSOLE_HEADERS if console else {})}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """Set a console cookie: HttpOnly, SameSite=Strict, Path=/console, Secure over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max(0, max_age),
        path=PREFIX,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    """Expire a console cookie in the browser."""
    response.delete_cookie(
        name,
        path=PREFIX,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def new_login_nonce() -> str:
    """The value of the sign-in form's CSRF cookie and field."""
    return secrets.token_urlsafe(32)


def check_origin(request: Request) -> None:
    """Refuse a request that a browser says comes from another site.

    ``Origin: null`` says nothing (Chromium sends it on form posts under
    ``Referrer-Policy: no-referrer``); the CSRF token decides then.

    Raises:
        CsrfError: its ``Origin`` is another site's, or ``Sec-Fetch-Site`` is not
            ``same-origin`` (or ``none``: typed by the user).
    """
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin not in (None, "null", own):
        raise CsrfError(f"the request came from another site ({origin}); it was not carried out")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise CsrfError("the request came from another site; it was not carried out")


def check_csrf(request: Request, expected: str | None, submitted: str | None) -> None:
    """Refuse a state-changing request whose CSRF token is not ``expected``.

    Raises:
        CsrfError: no token, a wrong one, or a request from another site.
    """
    check_origin(request)
    if (
        not expected
        or not submitted
        or not hmac.compare_digest(expected.encode(), submitted.encode("utf-8", "replace"))
    ):
        raise CsrfError(
            "the form is out of date or did not come from this console (its CSRF token does "
            "not match): reload the page and try again"
        )
