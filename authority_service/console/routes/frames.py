"""Single frame: pick a frame of a public clip, reverse only that frame, beside the public one.

The browser cannot decode a lossless evidence clip (FFV1) and must not re-encode a frame (its
message lives in the pixels' least significant bits), so the server cuts the picked frame out
as a PNG, exactly (:func:`clip_frame_png`; the public frame, nothing reversed). The page then
sends that PNG to ``POST /v1/frames:reconstruct``'s own function, which reverses and audits it
(or, with ``jobs.require_approval``, stores it as a frame job for an approver).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from authority_service.api.deps import ServicesDep
from authority_service.api.routes.frames import reconstruct_frame
from authority_service.api.uploads import read_multipart, save_upload
from authority_service.console.deps import console_user
from authority_service.console.render import page
from authority_service.console.routes.requests import FORM_LIMITS, Investigator
from authority_service.console.security import PREFIX
from authority_service.errors import CorruptVideoError, InvalidRequestError
from authority_service.media import encode_png, inspect_clip
from authority_service.users import User
from shared.video_io import VideoDecodeError, expected_frames, read_frames

router = APIRouter(prefix=PREFIX, include_in_schema=False)

UPLOAD_PATHS = (f"{PREFIX}/frames", f"{PREFIX}/frames/extract")
MAX_FRAME_INDEX = 10_000_000


def clip_frame_png(path: Path, index: int) -> tuple[bytes, int | None]:
    """Frame ``index`` of the clip at ``path`` as a PNG (its exact RGB pixels), and how many
    frames the clip declares.

    Raises:
        NotAVideoError / CorruptVideoError / UnsupportedFrameSizeError: as
            :func:`authority_service.media.inspect_clip`, or the clip fails before the frame.
        InvalidRequestError: the clip has no frame ``index`` (``field`` ``frame``).
    """
    declared = expected_frames(inspect_clip(path))
    try:
        for frame in read_frames(path):
            if frame.index == index:
                return encode_png(frame.rgb), declared
    except VideoDecodeError as exc:
        raise CorruptVideoError("the clip cannot be read up to that frame") from exc
    raise InvalidRequestError(
        f"the clip has no frame {index} (frames are numbered from 0)", field="frame"
    )


@router.get("/frames/new", response_class=HTMLResponse)
def frame_page(
    request: Request,
    user: Annotated[User, Depends(console_user("new_request", Investigator, audit_success=False))],
    services: ServicesDep,
) -> HTMLResponse:
    """The single-frame page."""
    return page(
        request,
        "frame.html",
        max_bytes=services.settings.limits.max_clip_bytes,
        require_approval=services.jobs.require_approval,
        **FORM_LIMITS,
    )


@router.post("/frames/extract", response_class=Response)
async def extract_frame(
    request: Request,
    user: Annotated[
        User,
        Depends(console_user("extract_frame", Investigator, audit_success=False, csrf=True)),
    ],
    services: ServicesDep,
) -> Response:
    """One public frame of an uploaded clip as a PNG (header ``X-Uunet-Frames``: the frames
    the clip declares). Nothing is reversed, so only refusals are audited; the clip is deleted
    at once.

    Raises:
        InvalidRequestError: ``frame`` is not a frame number of the clip (422).
        and the errors of :func:`clip_frame_png` and :func:`~authority_service.api.uploads.\
read_multipart`.
    """
    upload = await read_multipart(
        request,
        limit=services.settings.limits.max_clip_bytes,
        file_field="clip",
        text_fields=("frame",),
    )
    path = services.jobs.upload_path(services.jobs.new_job_id()).with_suffix(".extract")
    try:
        try:
            text = upload.fields["frame"]
            if not text.isdigit() or int(text) > MAX_FRAME_INDEX:
                raise InvalidRequestError(
                    "frame must be a frame number: 0, 1, 2, ...", field="frame"
                )
            await run_in_threadpool(save_upload, upload.file.file, path)
        finally:
            await upload.file.close()
        png, declared = await run_in_threadpool(clip_frame_png, path, int(text))
    finally:
        path.unlink(missing_ok=True)
    headers = {"X-Uunet-Frames": "" if declared is None else str(declared)}
    return Response(png, media_type="image/png", headers=headers)


@router.post("/frames", response_class=Response)
async def reverse_frame(
    request: Request,
    user: Annotated[
        User,
        Depends(console_user("reconstruct_frame", Investigator, reversal_kind="frame", csrf=True)),
    ],
    services: ServicesDep,
) -> Response:
    """``POST /v1/frames:reconstruct`` for the session's user: the PNG (200), or a frame job
    waiting for an approver (202)."""
    return await reconstruct_frame(request, user, services)
