"""``/v1/reconstructions/{id}/preview/{which}.mp4`` and ``.../faces``: what a browser plays.

Watermarked MP4 previews of a succeeded clip job's public clip and result, served with byte
ranges (:mod:`authority_service.api.byte_ranges`), and every frame's face boxes with how each
was reversed. Access is the result's: an investigator, the job's requester, the job succeeded
(:mod:`authority_service.previews`, which says what is audited when).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from authority_service.api.byte_ranges import NO_STORE, media_response
from authority_service.api.deps import ServicesDep, authorize, current_attempt
from authority_service.api.errors import Attempt
from authority_service.api.routes.reconstructions import JobId, own_job
from authority_service.api.schemas import ErrorOut
from authority_service.jobs import Job
from authority_service.previews import face_overlay, preview_file, record_view
from authority_service.users import Role, User

router = APIRouter(prefix="/v1/reconstructions", tags=["reconstruction"])

_ACCESS_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in (
        (401, "No token, or an expired, forged or revoked one."),
        (403, "Only investigators; or an approver refused the job (`job_refused`)."),
        (
            404,
            "No such job of yours, or it has none (`preview_unavailable`: a frame job, or one "
            "that finished before previews and face data were recorded).",
        ),
        (409, "The job has not finished (`job_not_finished`) or waits for approval."),
        (410, "The job expired; its result and previews were deleted."),
        (415, "The job failed: the upload was not a video."),
        (422, "The job failed on the clip (its error code), or a bad `which`/`variant`."),
    )
}


def _describe(attempt: Attempt, job: Job) -> None:
    """Name the job in the request's audit record (granted or refused)."""
    attempt.case_id, attempt.justification = job.case_id, job.justification
    attempt.clip_sha256, attempt.job_id = job.clip_sha256, job.id
    report = job.report or {}
    attempt.model_ids = ",".join(report.get("model_ids", [])) or None
    attempt.frames = report.get("frames")


@router.get(
    "/{job_id}/preview/{which}.mp4",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "The whole preview."},
        206: {
            "content": {"video/mp4": {}},
            "description": "The byte range asked for (`Range: bytes=a-b`, `a-`, `-n`).",
        },
        416: {
            "model": ErrorOut,
            "description": "The range starts past the end (`range_not_satisfiable`, "
            "`Content-Range: bytes */<size>`).",
        },
        **_ACCESS_ERRORS,
    },
    summary="A watermarked preview of the public clip or the result, for a <video>",
)
def get_preview(
    request: Request,
    job_id: JobId,
    which: Annotated[
        Literal["public", "result"],
        PathParam(description="`public`: the uploaded clip; `result`: the reconstruction."),
    ],
    user: Annotated[User, Depends(authorize("view_preview", {Role.investigator}))],
    services: ServicesDep,
    variant: Annotated[
        Literal["yuv444", "rgb", "yuv420"],
        Query(
            description="`yuv444`: H.264 4:4:4, lossless coding of BT.709 full-range YUV "
            "(Chromium shows it within 3 levels); `rgb`: H.264 RGB, exact (Chromium shows it in "
            "false colours: for tools); `yuv420`: H.264 4:2:0 CRF 18 (other browsers)."
        ),
    ] = "yuv444",
) -> Response:
    """H.264 in MP4, each frame watermarked with the requester, the case and the time the
    preview was made; frame ``i`` at ``i / fps`` in both clips, so two ``<video>`` elements
    play in step. Byte ranges are served (206) and nothing is cached (``no-store``). A request
    that starts a view (no ``Range``, or from byte 0) is audited, and so is the first other
    one of a user, job and clip in 10 minutes; the exact result stays at ``.../result``."""
    job = own_job(services, job_id, user)
    attempt = current_attempt(request)
    _describe(attempt, job)
    path = preview_file(services, job, which, variant, user)

    def audit(start: int | None) -> None:
        sent = "whole" if start is None else f"from byte {start}"
        entry = attempt.entry("granted", f"preview of the {which} clip ({variant}) sent {sent}")
        attempt.recorded = record_view(services, entry, which=which, start=start)

    return media_response(request, path, before_send=audit)


@router.get(
    "/{job_id}/faces",
    responses={
        200: {"description": "Every frame's boxes (`authority_service.previews.face_overlay`)."},
        **_ACCESS_ERRORS,
    },
    summary="Every frame's face boxes and how each was reversed (sealed / ud)",
)
def get_faces(
    request: Request,
    job_id: JobId,
    user: Annotated[User, Depends(authorize("read_faces", {Role.investigator}))],
    services: ServicesDep,
) -> JSONResponse:
    """Per frame, its index and presentation time and its ROI message's boxes, each with its
    method (``sealed``: pasted back exactly, with its ``codec``; ``ud``: reversed by the model,
    with its ``reason``), for the whole clip. Each read is audited; ``no-store``."""
    job = own_job(services, job_id, user)
    attempt = current_attempt(request)
    _describe(attempt, job)
    overlay = face_overlay(services, job, user)
    services.record(
        attempt.entry(
            "granted",
            f"face data of {overlay['frame_count']} frames, {overlay['faces']} faces read",
        )
    )
    attempt.recorded = True
    return JSONResponse(overlay, headers=NO_STORE)
