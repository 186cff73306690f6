"""``POST /v1/frames:reconstruct``: one PNG frame in, the reconstructed PNG out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from authority_service.api.deps import ServicesDep, authorize, current_attempt
from authority_service.api.reasons import REASON_FIELDS, REASON_SCHEMA, take_reason
from authority_service.api.schemas import ErrorOut
from authority_service.api.uploads import multipart_schema, read_all, read_multipart
from authority_service.media import MIN_FRAME_SIDE, decode_png, encode_png
from authority_service.reconstruction import ImageResult
from authority_service.service import Services
from authority_service.users import Role, User

router = APIRouter(prefix="/v1", tags=["reconstruction"])

FrameInvestigator = Annotated[
    User,
    Depends(authorize("reconstruct_frame", {Role.investigator}, reversal_kind="frame")),
]
_ERRORS = {
    status: {"model": ErrorOut, "description": text}
    for status, text in (
        (400, "Not valid multipart/form-data."),
        (401, "No token, or an expired, forged or revoked one."),
        (403, "Only investigators may reverse."),
        (413, "The upload is over `limits.max_frame_bytes`."),
        (415, "Not an 8-bit RGB/RGBA PNG."),
        (
            422,
            f"A field is missing or invalid, the frame is under {MIN_FRAME_SIDE} pixels a side, "
            "or it carries no message, a malformed, forged or unverifiable one, or one naming "
            "a model this authority lacks.",
        ),
        (503, "The audit log cannot be written; nothing was reversed."),
    )
}


def _reconstruct(services: Services, data: bytes) -> tuple[ImageResult, bytes]:
    result = services.reconstructor.reconstruct_image(decode_png(data))
    return result, encode_png(result.rgb)


@router.post(
    "/frames:reconstruct",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {}},
            "description": "The frame with its original faces (lossless PNG). Headers "
            "`X-Uunet-Model-Id`, `-Camera-Id`, `-Frame-Index`, `-Faces`, `-Verified`, "
            "`-Audit-Seq` describe it.",
        },
        **_ERRORS,
    },
    openapi_extra=multipart_schema(
        "frame",
        "A PNG of one public (de-identified) frame, with its ROI message in the LSBs.",
        REASON_SCHEMA,
    ),
    summary="Reverse one frame (synchronous)",
)
async def reconstruct_frame(
    request: Request, user: FrameInvestigator, services: ServicesDep
) -> Response:
    """Read the frame's ROI message, verify it, run Ud on its boxes and return the PNG.

    The attempt is audited (granted or refused) before the response."""
    attempt = current_attempt(request)
    upload = await read_multipart(
        request,
        limit=services.settings.limits.max_frame_bytes,
        file_field="frame",
        text_fields=REASON_FIELDS,
    )
    try:
        take_reason(attempt, upload.fields)
        data, attempt.clip_sha256 = await run_in_threadpool(read_all, upload.file.file)
    finally:
        await upload.file.close()
    attempt.frames = 1
    result, png = await run_in_threadpool(_reconstruct, services, data)
    attempt.model_ids = result.model_id
    message = result.message
    record = services.record(
        attempt.entry(
            "granted",
            f"{len(message.boxes)} faces, message {message.version}, camera "
            f"{message.camera_id or '-'}, frame {message.frame_index}, "
            f"{'verified' if result.verified else 'unverified'}",
        )
    )
    attempt.recorded = True
    services.metrics.reversals.labels("frame", "granted").inc()
    services.metrics.faces.inc(len(message.boxes))
    headers = {
        "X-Uunet-Model-Id": result.model_id or "",
        "X-Uunet-Camera-Id": message.camera_id or "",
        "X-Uunet-Frame-Index": "" if message.frame_index is None else str(message.frame_index),
        "X-Uunet-Faces": str(len(message.boxes)),
        "X-Uunet-Verified": "true" if result.verified else "false",
        "X-Uunet-Audit-Seq": str(record.seq),
    }
    return Response(png, media_type="image/png", headers=headers)
