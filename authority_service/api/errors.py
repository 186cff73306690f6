"""JSON error responses, and the audit record of every refused attempt.

Every protected route starts an :class:`Attempt` (see :mod:`.deps`) before it authenticates.
Whatever ends the request early (a bad token, a wrong role, an oversized upload, a forged
message, a missing field, an unexpected failure) passes through these handlers, which write the
attempt's refusal to the audit log *before* the response is sent. If that write fails the
client gets a 503 and nothing else. One exception, so that anyone cannot flood the log:
refusals of callers not signed in (no or a bad token, a failed login, an over-limit body) are
recorded at once only for the first of each window of :mod:`authority_service.refusals`; the
rest are counted and written as one record when the window closes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from authority_service.audit import AuditEntry
from authority_service.errors import AuthorityError

__all__ = [
    "STATUS_BY_CODE",
    "Attempt",
    "ErrorRenderer",
    "error_response",
    "install_error_handlers",
    "refusal_detail",
    "refusal_response",
]

log = logging.getLogger(__name__)

STATUS_BY_CODE: dict[str, int] = {
    "malformed_request": 400,
    "not_authenticated": 401,
    "invalid_credentials": 401,
    "invalid_token": 401,
    "token_expired": 401,
    "token_revoked": 401,
    "permission_denied": 403,
    "csrf_failed": 403,
    "self_role_change": 403,
    "self_approval": 403,
    "job_refused": 403,
    "not_found": 404,
    "preview_unavailable": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "user_exists": 409,
    "last_admin": 409,
    "job_not_finished": 409,
    "job_pending_approval": 409,
    "job_not_pending": 409,
    "job_expired": 410,
    "upload_too_large": 413,
    "range_not_satisfiable": 416,
    "not_a_video": 415,
    "unsupported_image": 415,
    "invalid_request": 422,
    "corrupt_video": 422,
    "unsupported_frame_size": 422,
    "no_message": 422,
    "malformed_message": 422,
    "forged_message": 422,
    "unauthenticated_message": 422,
    "unknown_model": 422,
    "sealed_faces_invalid": 422,
    "sealing_key_not_held": 422,
    "no_default_model": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "worker_lost": 500,  # a job whose workers were lost jobs.max_attempts times
    "stored_object_missing": 500,  # a job's upload or result is not in the clip store
    "service_busy": 503,
    "storage_unavailable": 503,  # the clip store: no bucket, credentials refused, unreachable
    "audit_unavailable": 503,
}
_CODE_BY_STATUS = {404: "not_found", 405: "method_not_allowed", 400: "malformed_request"}
_NO_AUDIT = "the audit log cannot be written"
#: Renders an error (request, status, code, detail, headers, extra facts) as a response.
ErrorRenderer = Callable[[Request, int, str, str, dict[str, str], dict[str, Any]], Response]


@dataclass
class Attempt:
    """One request to a protected route, as the audit log will record it."""

    action: str
    client: str | None
    audit_success: bool = True
    #: ``"frame"`` or ``"clip"`` for reversal routes (counted in the reversal metrics).
    reversal_kind: str | None = None
    actor: str = "anonymous"
    role: str | None = None
    case_id: str | None = None
    justification: str | None = None
    clip_sha256: str | None = None
    model_ids: str | None = None
    frames: int | None = None
    job_id: str | None = None
    recorded: bool = False

    def entry(self, outcome: str, detail: str | None = None) -> AuditEntry:
        return AuditEntry(
            actor=self.actor,
            role=self.role,
            action=self.action,
            outcome=outcome,
            case_id=self.case_id,
            justification=self.justification,
            clip_sha256=self.clip_sha256,
            model_ids=self.model_ids,
            frames=self.frames,
            job_id=self.job_id,
            client=self.client,
            detail=detail,
        )


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status, headers=headers)


def refusal_detail(status: int, code: str, detail: str) -> str:
    """The audit record's ``detail`` of a refusal: ``"<status> <code>: <detail>"``."""
    return f"{status} {code}: {detail}"


def _audit_refusal(request: Request, status: int, code: str, detail: str) -> JSONResponse | None:
    """Record the refusal of the request's attempt; a 503 response if that fails."""
    attempt: Attempt | None = getattr(request.state, "attempt", None)
    if attempt is None or attempt.recorded:
        return None
    outcome = "failed" if status >= 500 else "refused"
    services = request.app.state.services
    try:
        services.record(attempt.entry(outcome, refusal_detail(status, code, detail)))
    except (SQLAlchemyError, OSError) as exc:
        log.error("cannot write the audit record of a refused %s: %s", attempt.action, exc)
        return error_response(503, "audit_unavailable", _NO_AUDIT)
    attempt.recorded = True
    if attempt.reversal_kind is not None:
        services.metrics.reversals.labels(attempt.reversal_kind, outcome).inc()
    return None


def refusal_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """The JSON error response, once the request's attempt (if any) is audited as refused;
    a 503 when that audit record cannot be written.

    A request whose scope state holds an :data:`ErrorRenderer` under ``render_error`` (the
    console's pages, :mod:`authority_service.console`) gets what it renders instead, after the
    same audit."""
    failed = _audit_refusal(request, status, code, detail)
    if failed is not None:
        status, code, detail, headers, extra = 503, "audit_unavailable", _NO_AUDIT, None, {}
    render: ErrorRenderer | None = getattr(request.state, "render_error", None)
    if render is not None:
        return render(request, status, code, detail, headers or {}, extra)
    if failed is not None:
        return failed
    return error_response(status, code, detail, headers, **extra)


async def _authority_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthorityError)
    status = STATUS_BY_CODE.get(exc.code, 400)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry = exc.extra.get("retry_after_s")
    if retry is not None:
        headers["Retry-After"] = str(retry)
    return refusal_response(request, status, exc.code, exc.detail, headers, **exc.extra)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        problems.append({"field": where, "problem": str(error.get("msg", ""))})
    detail = "; ".join(f"{p['field']}: {p['problem']}" for p in problems) or "invalid request"
    return refusal_response(request, 422, "invalid_request", detail, errors=problems)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, f"http_{exc.status_code}")
    headers = dict(exc.headers or {})
    return refusal_response(request, exc.status_code, code, str(exc.detail), headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return refusal_response(
        request, 500, "internal_error", f"the service failed: {type(exc).__name__}; see its log"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the JSON/audit handlers above."""
    app.add_exception_handler(AuthorityError, _authority_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
