"""Build the FastAPI application of the authority.

``create_app(settings, secrets)`` wires the services (:mod:`authority_service.service`), the
routers, the JSON/audit error handlers and two small ASGI middlewares: a body-size cap for every
route that is not an upload route (the upload routes enforce their own, larger, limits after
authenticating) and request metrics. The web console (:mod:`authority_service.console`, at
``/console/``) is installed last: its headers middleware puts ``Cache-Control: no-store`` on
every response. Workers start and stop with the app's lifespan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authority_service.api.deps import client_address, count_unauthenticated_refusal
from authority_service.api.errors import Attempt, install_error_handlers, refusal_response
from authority_service.api.routes import (
    approvals,
    audit,
    auth,
    frames,
    health,
    previews,
    reconstructions,
    users,
)
from authority_service.api.schemas import ErrorOut, apply_password_rule
from authority_service.api.uploads import check_declared_length, limited_receive
from authority_service.config import AuthoritySettings
from authority_service.console import UPLOAD_PATHS as CONSOLE_UPLOAD_PATHS
from authority_service.console import install_console
from authority_service.credentials import AuthoritySecrets
from authority_service.errors import UploadTooLargeError
from authority_service.metrics import Metrics, method_label
from authority_service.service import Services, build_services

__all__ = ["API_DESCRIPTION", "create_app"]

log = logging.getLogger(__name__)

#: Routes that parse their (large) bodies themselves, after authentication.
UPLOAD_PATHS = ("/v1/reconstructions", "/v1/frames:reconstruct", *CONSOLE_UPLOAD_PATHS)
SMALL_BODY_LIMIT = 64 * 1024
#: Errors any route may return (the JSON error body, not FastAPI's default validation body).
COMMON_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "The body cannot be parsed."},
    413: {"model": ErrorOut, "description": "The body is over the route's size limit."},
    422: {"model": ErrorOut, "description": "A parameter or field is missing or invalid."},
    500: {"model": ErrorOut, "description": "The service failed (its log says why)."},
}

API_DESCRIPTION = """
The uunet authority gives the original faces of de-identified surveillance video back to
authorised investigators, and keeps a tamper-evident record of every attempt.

* **Authentication**: OAuth2 password flow at `POST /v1/token` gives a short-lived bearer token.
  Roles: `investigator` (reverses), `auditor` (reads and verifies the audit log), `admin`
  (manages users), `approver` (approves or refuses others' reversals). No role implies another.
* **Reversal**: `POST /v1/frames:reconstruct` (one PNG, synchronous) and
  `POST /v1/reconstructions` (a clip, asynchronous job; `GET /v1/reconstructions/{id}` for its
  progress, `GET /v1/reconstructions/{id}/result` for the clip; `.../preview/{public|result}.mp4`
  for watermarked previews a browser plays, with byte ranges, and `.../faces` for every
  frame's face boxes and how each was reversed). Both need a `case_id` and a
  `justification`. Clips are lossless recordings whose frames carry the ROI message in their
  least significant bits (the edge's evidence output: FFV1/MKV or H.264 RGB qp 0), or the
  edge's lossy public stream, whose messages travel in H.264 SEI units: those cannot be
  authenticated (the tag binds the lossless pixels). A message that cannot be verified (SEI,
  paper format, a camera without a key) is refused (`unauthenticated_message`) unless
  `messages.require_authentication` is `false` (it is `true` by default); then it is reversed
  and reported unverified (`unverified_frames`, `X-Uunet-Verified: false`, the audit record;
  from SEI approximately, `message_source: "sei"`). The result is written losslessly:
  **H.264 RGB qp 0 (libx264rgb) in MP4** by default (`video/mp4`), or **FFV1 (RGB) in
  Matroska** (`video/x-matroska`) when `jobs.result_codec` is `ffv1` or the frame size is
  odd.
* **Dual control** (`jobs.require_approval`, off by default): every reversal waits
  `pending_approval` until a second user, an `approver`, approves it
  (`POST /v1/approvals/{id}/approve`, with a `reason`; listed at `GET /v1/approvals`) or
  refuses it (`.../refuse`). The requester can never decide their own (`self_approval`, 403).
  A frame then also becomes a job (202, `kind: frame`) whose PNG the requester fetches at
  `GET /v1/reconstructions/{id}/result` once approved.
* **Errors** are JSON: `{"error": "<code>", "detail": "<sentence>", ...}` with a stable code
  (`forged_message`, `unknown_model`, `token_expired`, ...). Every refused attempt is audited.
* **Audit**: `GET /v1/audit`, `GET /v1/audit/verify` (hash chain check).
"""


def _package_version() -> str:
    try:
        return version("uunet")
    except PackageNotFoundError:
        return "0+unknown"


class SmallBodyLimit:
    """Refuse bodies over ``limit`` bytes on every route but the upload routes: 413, audited.

    The body is read here, before the route: a declared ``Content-Length`` over the limit is
    refused unread, and a chunked body is counted as it arrives (the same checks as the upload
    routes, :mod:`.uploads`). FastAPI would turn an error raised while it parses a body into a
    400, and parses it before any dependency has started the route's audited attempt, so the
    refusal is recorded here (action ``oversized_request``, the bearer's claimed user
    ``unverified:<name>`` or ``anonymous``), counted per window like every refusal of a caller
    not signed in (:mod:`authority_service.refusals`). A body within the limit (64 KiB) is passed on
    as one message.
    """

    def __init__(self, app: ASGIApp, limit: int = SMALL_BODY_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # endswith: behind a proxy prefix (root_path) the path carries the prefix too.
        if scope["type"] != "http" or scope["path"].endswith(UPLOAD_PATHS):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            check_declared_length(request, self.limit)
            body = await Request(scope, limited_receive(receive, self.limit)).body()
        except UploadTooLargeError:
            response = self._refuse(request)
            await response(scope, receive, send)
            return
        except ClientDisconnect:
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # nothing more to read: wait for the disconnect
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _refuse(self, request: Request) -> Response:
        services: Services = request.app.state.services
        actor = "anonymous"
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token and services.tokens is not None:
            claimed = services.tokens.unverified_subject(token.strip())
            if claimed:
                actor = f"unverified:{claimed}"
        attempt = Attempt(action="oversized_request", client=client_address(request), actor=actor)
        request.state.attempt = attempt
        refused = UploadTooLargeError(
            f"the body of {request.method} {request.url.path} is over this route's limit of "
            f"{self.limit} bytes",
            limit_bytes=self.limit,
        )
        # Nobody is signed in yet: counted per window like any unauthenticated refusal.
        count_unauthenticated_refusal(services, attempt, refused)
        return refusal_response(request, 413, refused.code, refused.detail, **refused.extra)


class RequestMetrics:
    """Count requests and their latency by route template (never by raw path) and method
    (a made-up one counts as ``other``): a bounded label set whatever clients send."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = method_label(scope["method"])
            self.metrics.requests.labels(template, method, str(status[0])).inc()
            self.metrics.request_seconds.labels(template).observe(time.perf_counter() - started)


def create_app(
    settings: AuthoritySettings,
    secrets: AuthoritySecrets,
    *,
    services: Services | None = None,
) -> FastAPI:
    """The ASGI application; workers start when the app's lifespan starts.

    Raises:
        authority_service.db.DatabaseError / shared.model_dir.ModelDirError: see
            :func:`~authority_service.service.build_services`.
        authority_service.clip_store.StoreUnavailableError: the clip store cannot be used (no
            such bucket, credentials refused, endpoint unreachable).
    """
    if services is None:
        services = build_services(
            settings,
            jwt_key=secrets.jwt_key,
            camera_keys=secrets.camera_keys,
            sealing_keys=secrets.sealing_keys,
        )
    services.jobs.clips.check()  # before serving: a bucket that is not there stops the start

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.decoders.load_all()  # a broken model stops the start, not the first request
        services.jobs.start()
        log.info(
            "authority ready: %d users, decoders %s, %d camera keys, sealing key ids %s",
            services.users.count(),
            services.decoders.model_ids,
            len(secrets.camera_keys),
            services.reconstructor.sealed.key_ids,
        )
        try:
            yield
        finally:
            services.jobs.stop()
            services.close()

    app = FastAPI(
        title="uunet authority",
        version=_package_version(),
        description=API_DESCRIPTION,
        lifespan=lifespan,
        responses=COMMON_ERRORS,
    )
    app.state.services = services
    for module in (auth, users, reconstructions, previews, frames, approvals, audit, health):
        app.include_router(module.router)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # built once, with the running password rule
            apply_password_rule(generate_openapi(), services.passwords.min_length)
        return app.openapi_schema or generate_openapi()

    app.openapi = openapi  # type: ignore[method-assign]
    install_error_handlers(app)
    app.add_middleware(SmallBodyLimit)
    app.add_middleware(RequestMetrics, metrics=services.metrics)
    install_console(app, services)  # its headers middleware outermost: on every response
    return app
