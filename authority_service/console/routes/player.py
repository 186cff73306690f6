"""The side-by-side player: the public clip and the reconstruction, in step, faces on demand.

A ``<video>`` cannot send a bearer header, so the media come through these cookie routes,
which call the ``/v1`` preview routes' own functions (:mod:`authority_service.api.routes.\
previews`) with the session's user: the same watermarked previews (H.264 4:4:4 for Chromium,
4:2:0 for other browsers; :mod:`authority_service.preview_media` says why not the RGB one),
byte ranges, access rule and audit records (``view_preview``, ``read_faces``). The exact
result stays downloadable as it is.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from authority_service.api.deps import ServicesDep
from authority_service.api.routes.previews import get_faces, get_preview
from authority_service.api.routes.reconstructions import JobId, own_job
from authority_service.api.schemas import JobOut
from authority_service.console.deps import console_user
from authority_service.console.render import page
from authority_service.console.routes.requests import Investigator
from authority_service.console.security import PREFIX
from authority_service.errors import PreviewUnavailableError
from authority_service.job_store import JobKind
from authority_service.jobs import require_succeeded
from authority_service.users import User

router = APIRouter(prefix=PREFIX, include_in_schema=False)

Which = Literal["public", "result"]
#: The variants are :mod:`authority_service.preview_media`'s (it refuses an unknown one).
Variant = Annotated[str, Query(max_length=16)]


@router.get("/jobs/{job_id}/player", response_class=HTMLResponse)
def player_page(
    request: Request,
    job_id: JobId,
    user: Annotated[User, Depends(console_user("open_player", Investigator, audit_success=False))],
    services: ServicesDep,
) -> HTMLResponse:
    """The two videos and their controls (the media requests are audited, not this page).

    Raises:
        the errors of :func:`~authority_service.jobs.require_succeeded` (the job has not
        succeeded); PreviewUnavailableError: a frame job (its result is one PNG).
    """
    job = own_job(services, job_id, user)
    require_succeeded(job)
    if job.kind != JobKind.clip:
        raise PreviewUnavailableError(
            f"job {job.id} reversed a single frame: there is no clip to play; its result is the "
            "PNG on the job's page"
        )
    return page(request, "player.html", job=JobOut.of(job))


@router.get("/jobs/{job_id}/media/{which}.mp4", response_class=Response)
def player_media(
    request: Request,
    job_id: JobId,
    which: Which,
    user: Annotated[User, Depends(console_user("view_preview", Investigator))],
    services: ServicesDep,
    variant: Variant = "yuv444",
) -> Response:
    """``GET /v1/reconstructions/{id}/preview/{which}.mp4`` for the session's user."""
    return get_preview(
        request=request,
        job_id=job_id,
        which=which,
        user=user,
        services=services,
        variant=variant,
    )


@router.get("/jobs/{job_id}/faces")
def player_faces(
    request: Request,
    job_id: JobId,
    user: Annotated[User, Depends(console_user("read_faces", Investigator))],
    services: ServicesDep,
) -> JSONResponse:
    """``GET /v1/reconstructions/{id}/faces`` for the session's user (what the overlay draws)."""
    return get_faces(request=request, job_id=job_id, user=user, services=services)
