"""The investigator console: web pages served by the authority itself at ``/console/``.

Same process, same users, same audit log as the HTTP API: every page calls the ``/v1`` route's
own function with the signed-in user of a session cookie (:mod:`.sessions`, :mod:`.deps`), so
a page is checked, refused and audited exactly as the API call it stands for. Server-rendered
Jinja2 templates (``templates/``) and a little plain JavaScript (``static/``): nothing is
built, nothing fetched from elsewhere, no inline script (:mod:`.security` sets the
Content-Security-Policy and ``Cache-Control: no-store``).

Pages (by role): sign in / out (all); new reversal request with upload progress, the job's
live progress, the side-by-side player and single frames (investigator); the approval inbox
(approver, with ``jobs.require_approval``); the audit log with filters, one record, and the
chain's check (auditor); users (admin).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from authority_service.console.render import render_error
from authority_service.console.routes import (
    approvals,
    audit,
    frames,
    player,
    requests,
    signin,
    users,
)
from authority_service.console.security import PREFIX, SecurityHeaders
from authority_service.console.sessions import SessionStore
from authority_service.service import Services

__all__ = ["UPLOAD_PATHS", "install_console"]

#: Console routes that read their (large) bodies after authentication, as the API's do.
UPLOAD_PATHS = (*requests.UPLOAD_PATHS, *frames.UPLOAD_PATHS)
STATIC_DIR = Path(__file__).parent / "static"


def install_console(app: FastAPI, services: Services) -> None:
    """Add the console's routes, static files, sessions and headers to ``app``.

    Call it after the app's other middlewares: its headers middleware then wraps them all (so
    every response, a refusal of the body-size limit too, carries ``no-store``).
    """
    assert services.tokens is not None, "the console needs the token service"
    app.state.console_sessions = SessionStore(services.tokens)
    for module in (signin, requests, frames, player, approvals, audit, users):
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_middleware(SecurityHeaders, render_error=render_error)
