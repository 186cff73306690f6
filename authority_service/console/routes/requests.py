"""Reversal requests: the upload form, the job's page and its live state, the exact result.

Each route calls the ``/v1`` route's own function (:mod:`authority_service.api.routes.\
reconstructions`) with the session's user: the same checks, job and audit records.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from authority_service.api.deps import ServicesDep
from authority_service.api.routes.reconstructions import (
    JobId,
    get_reconstruction,
    get_reconstruction_result,
    own_job,
    submit_reconstruction,
)
from authority_service.api.schemas import CASE_ID_MAX, JUSTIFICATION_MAX, JUSTIFICATION_MIN, JobOut
from authority_service.console.deps import console_user
from authority_service.console.render import page
from authority_service.console.security import PREFIX
from authority_service.users import Role, User

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: The console's upload routes (their bodies are read after authentication, as the API's).
UPLOAD_PATHS = (f"{PREFIX}/requests",)
#: Limits the forms state (the API checks them again).
FORM_LIMITS = {
    "case_id_max": CASE_ID_MAX,
    "justification_min": JUSTIFICATION_MIN,
    "justification_max": JUSTIFICATION_MAX,
}
Investigator = {Role.investigator}


@router.get("/requests/new", response_class=HTMLResponse)
def new_request(
    request: Request,
    user: Annotated[User, Depends(console_user("new_request", Investigator, audit_success=False))],
    services: ServicesDep,
) -> HTMLResponse:
    """The form: a recorded public clip, the case id and the justification."""
    return page(
        request,
        "request_new.html",
        max_bytes=services.settings.limits.max_clip_bytes,
        require_approval=services.jobs.require_approval,
        **FORM_LIMITS,
    )


@router.post("/requests", status_code=202)
async def submit_request(
    request: Request,
    user: Annotated[
        User,
        Depends(console_user("reconstruct_clip", Investigator, reversal_kind="clip", csrf=True)),
    ],
    services: ServicesDep,
) -> JSONResponse:
    """``POST /v1/reconstructions`` for the session's user (the page's script sends it with the
    ``X-CSRF-Token`` header and shows the upload's progress); 202 with the job."""
    return await submit_reconstruction(request, user, services)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request,
    job_id: JobId,
    user: Annotated[User, Depends(console_user("read_job", Investigator, audit_success=False))],
    services: ServicesDep,
) -> HTMLResponse:
    """The job: its state, a live progress bar, the approval, the report and what to open."""
    job = JobOut.of(own_job(services, job_id, user))
    return page(request, "job.html", job=job)


@router.get("/jobs/{job_id}/state")
def job_state(
    job_id: JobId,
    user: Annotated[User, Depends(console_user("read_job", Investigator, audit_success=False))],
    services: ServicesDep,
) -> JobOut:
    """``GET /v1/reconstructions/{id}`` (what the job page polls)."""
    return get_reconstruction(job_id, user, services)


@router.get("/jobs/{job_id}/result", response_class=FileResponse)
def job_result(
    request: Request,
    job_id: JobId,
    user: Annotated[User, Depends(console_user("download_result", Investigator))],
    services: ServicesDep,
) -> Response:
    """``GET /v1/reconstructions/{id}/result``: the exact result, each download audited."""
    return get_reconstruction_result(request, job_id, user, services)
