"""``POST /v1/frames:reconstruct``: one PNG frame in, the reconstructed PNG out; with
``jobs.require_approval``, a frame job that waits for an approver (202) instead."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from authority_service.api.deps import ServicesDep, authorize, current_attempt
from authority_service.api.errors import Attempt
from authority_service.api.reasons import REASON_FIELDS, REASON_SCHEMA, take_reason
from authority_service.api.schemas import ErrorOut, JobOut
from authority_service.api.uploads import multipart_schema, read_all, read_multipart
from authority_service.frame_job import reconstruct_png
from authority_service.job_store import JobKind
from authority_service.media import MIN_FRAME_SIDE, decode_png
from authority_service.sealed import FaceMethods
from authority_service.service import Services
from authority_service.users import Role, User
from shared.private_files import open_private

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
            "or it carries no message, a malformed, forged or unverifiable one, one naming "
            "a model this authority lacks, or sealed faces that do not open "
            "(`sealed_faces_invalid`, `sealing_key_not_held`).",
        ),
        (
            503,
            "The audit log cannot be written; nothing was reversed. With "
            "`jobs.require_approval`: or the job queue is full (`Retry-After`).",
        ),
    )
}


def _method_headers(methods: FaceMethods) -> dict[str, str]:
    reasons = ",".join(f"{k}={v}" for k, v in sorted(methods.ud_reasons.items()))
    return {
        "X-Uunet-Faces-Sealed": str(methods.sealed),
        "X-Uunet-Faces-Ud": str(methods.ud),
        "X-Uunet-Ud-Reasons": reasons,
        "X-Uunet-Sealing-Key-Ids": ",".join(methods.key_ids),
    }


def _store_frame(path: Path, data: bytes) -> None:
    decode_png(data)  # an unreadable PNG is refused now, not after an approver's decision
    with open_private(path, "wb") as out:  # 0600: a frame of someone's (hidden) faces
        out.write(data)


async def _submit_frame_job(
    attempt: Attempt, user: User, services: Services, data: bytes, reason: tuple[str, str]
) -> JSONResponse:
    """Store the frame as a job of kind ``frame``, pending approval; 202 with the job."""
    job_id = services.jobs.new_job_id()
    attempt.job_id = job_id
    path = services.jobs.upload_path(job_id)
    try:
        await run_in_threadpool(_store_frame, path, data)
        services.jobs.ensure_capacity()
        services.record(attempt.entry("pending", f"frame job pending approval: {len(data)} bytes"))
        attempt.recorded = True
        job = services.jobs.submit(
            job_id=job_id,
            owner=user.name,
            case_id=reason[0],
            justification=reason[1],
            clip_sha256=attempt.clip_sha256 or "",
            clip_bytes=len(data),
            frames_total=1,
            kind=JobKind.frame,
        )
    except BaseException:
        services.jobs.discard_upload(job_id)  # written here, or already in the clip store
        attempt.recorded = False  # as for a clip: the log never shows an acceptance undone
        raise
    return JSONResponse(
        JobOut.of(job).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/reconstructions/{job.id}"},
    )


@router.post(
    "/frames:reconstruct",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {}},
            "description": "The frame with its original faces (lossless PNG). Headers "
            "`X-Uunet-Model-Id`, `-Camera-Id`, `-Frame-Index`, `-Faces`, `-Verified`, "
            "`-Audit-Seq` describe it; `-Faces-Sealed` (pasted back exactly from their sealed "
            "originals), `-Faces-Ud`, `-Ud-Reasons` (`reason=count,...`) and "
            "`-Sealing-Key-Ids` say how its faces were reversed.",
        },
        202: {
            "model": JobOut,
            "description": "With `jobs.require_approval`: no frame yet. The frame is stored as "
            "a job (`kind: frame`, `pending_approval`; `Location` names it); once an approver "
            "approves it, `GET /v1/reconstructions/{id}/result` returns the PNG.",
        },
        **_ERRORS,
    },
    openapi_extra=multipart_schema(
        "frame",
        "A PNG of one public (de-identified) frame, with its ROI message in the LSBs.",
        REASON_SCHEMA,
    ),
    summary="Reverse one frame (synchronous, unless it needs approval)",
)
async def reconstruct_frame(
    request: Request, user: FrameInvestigator, services: ServicesDep
) -> Response:
    """Read the frame's ROI message, verify it, run Ud on its boxes and return the PNG.

    With ``jobs.require_approval`` no face comes back from this call: the frame is stored as a
    job of kind ``frame`` and the answer is 202 with that job (``pending_approval``, audited
    ``pending``), as for a clip. A second user, an approver, approves or refuses it
    (``/v1/approvals``); approved, a worker reverses it and the requester fetches the PNG at
    ``GET /v1/reconstructions/{id}/result`` (the job's ``report`` holds what the headers say
    here). So approval binds the exact frame (its SHA-256), and one flow serves clips and frames.

    The attempt is audited (granted, pending or refused) before the response."""
    attempt = current_attempt(request)
    upload = await read_multipart(
        request,
        limit=services.settings.limits.max_frame_bytes,
        file_field="frame",
        text_fields=REASON_FIELDS,
    )
    try:
        reason = take_reason(attempt, upload.fields)
        data, attempt.clip_sha256 = await run_in_threadpool(read_all, upload.file.file)
    finally:
        await upload.file.close()
    attempt.frames = 1
    if services.jobs.require_approval:
        return await _submit_frame_job(attempt, user, services, data, reason)
    result, png = await run_in_threadpool(reconstruct_png, services.reconstructor, data)
    attempt.model_ids = result.model_id
    message = result.message
    record = services.record(
        attempt.entry(
            "granted",
            f"{len(message.boxes)} faces, message {message.version}, camera "
            f"{message.camera_id or '-'}, frame {message.frame_index}, "
            f"{'verified' if result.verified else 'unverified'}; "
            f"{result.faces_by_method.detail()}",
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
        **_method_headers(result.faces_by_method),
    }
    return Response(png, media_type="image/png", headers=headers)
