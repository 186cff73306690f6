"""Pages of the console (Jinja2 templates, autoescaped) and its error pages.

:func:`render_error` is the console's :data:`~authority_service.api.errors.ErrorRenderer`: a
refusal (already audited by the API's error handlers) becomes a page saying what went wrong in
words and with its stable code, the sign-in page for a missing, expired or revoked session, and
the API's JSON error for the console's scripts (which ask for JSON and show it the same way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from authority_service.api.errors import error_response
from authority_service.console.security import (
    LOGIN_COOKIE,
    LOGIN_COOKIE_MAX_AGE,
    PREFIX,
    SESSION_COOKIE,
    clear_cookie,
    new_login_nonce,
    set_cookie,
)
from authority_service.console.sessions import Session
from authority_service.users import User

__all__ = ["ConsoleContext", "base_url", "login_page", "page", "render_error", "wants_html"]

_ENV = Environment(
    loader=PackageLoader("authority_service.console", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

#: What a person reads first on an error page, by status.
TITLES = {
    400: "The request could not be read",
    403: "Not allowed",
    404: "Not found",
    405: "Not possible here",
    409: "Not yet",
    410: "No longer available",
    413: "Too large",
    415: "Not a file this service reads",
    422: "This cannot be used",
    429: "Too many attempts",
    500: "The service failed",
    503: "The service cannot do this now",
}
#: The sign-in page's message when a session is missing or ended, by error code.
SIGN_IN_MESSAGES = {
    "not_authenticated": "Sign in to continue.",
    "token_expired": "Your session has expired: sign in again.",
    "token_revoked": "Your session was ended because your password, role or account changed: "
    "sign in again.",
    "invalid_token": "Your session is no longer valid: sign in again.",
    "invalid_credentials": "Wrong user name or password.",
}


@dataclass
class ConsoleContext:
    """Who is signed in on this request (set once the session is authenticated)."""

    user: User
    session: Session


def base_url(request: Request) -> str:
    """The console's path prefix, behind any proxy root path."""
    return request.scope.get("root_path", "").rstrip("/") + PREFIX


def wants_html(request: Request) -> bool:
    """Whether the caller is a page load (the scripts ask for JSON)."""
    return "text/html" in request.headers.get("accept", "")


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the signed-in user, their CSRF token and any one-time message.

    Raises:
        jinja2.TemplateError: a broken template (a bug: the error handlers answer 500).
    """
    console: ConsoleContext | None = getattr(request.state, "console", None)
    flash = None
    if console is not None:
        flash, console.session.flash = console.session.flash, None
    values = {
        "base": base_url(request),
        "user": console.user if console else None,
        "csrf": console.session.csrf if console else "",
        "flash": flash,
        **context,
    }
    html = _ENV.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status)


def login_page(
    request: Request, *, message: str | None = None, code: str | None = None, status: int = 200
) -> HTMLResponse:
    """The sign-in form, with a fresh CSRF nonce in its field and cookie."""
    nonce = new_login_nonce()
    response = page(
        request, "login.html", status=status, message=message, code=code, login_csrf=nonce
    )
    set_cookie(response, request, LOGIN_COOKIE, nonce, LOGIN_COOKIE_MAX_AGE)
    return response


def render_error(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str],
    extra: dict[str, Any],
) -> Response:
    """The console's answer to a refusal the error handlers have audited."""
    if not wants_html(request):
        return error_response(status, code, detail, headers or None, **extra)
    signing_in = request.url.path.endswith(f"{PREFIX}/login") and request.method == "POST"
    if status == 401 or signing_in:
        message = SIGN_IN_MESSAGES.get(code, detail)
        response: Response = login_page(request, message=message, code=code, status=status)
        if status == 401:
            clear_cookie(response, request, SESSION_COOKIE)
    else:
        if code == "not_found" and detail == "Not Found":  # no route: Starlette's wording
            detail = "There is no such page in the console."
        response = page(
            request,
            "error.html",
            status=status,
            title=TITLES.get(status, "Refused" if status < 500 else "The service failed"),
            code=code,
            detail=detail,
            retry_after=headers.get("Retry-After"),
        )
    for name, value in headers.items():
        if name.lower() != "www-authenticate":  # a page, not a bearer challenge
            response.headers[name] = value
    return response
