"""``/v1/reconstructions``: submit a clip, follow the job, fetch the reconstructed clip."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from authority_service.api.deps import ServicesDep, authorize, current_attempt
from authority_service.api.reasons import REASON_FIELDS, REASON_SCHEMA, take_reason
from authority_service.api.schemas import ErrorOut, JobOut
from authority_service.api.uploads import multipart_schema, read_multipart, save_upload
from authority_service.clip_store import ObjectMissingError, result_key
from authority_service.errors import GoneError, NotFoundError
from authority_service.jobs import Job, require_succeeded
from authority_service.media import MIN_FRAME_SIDE, inspect_clip
from authority_service.service import Services
from authority_service.users import Role, User
from shared.video_io import expected_frames

router = APIRouter(prefix="/v1/reconstructions", tags=["reconstruction"])

_MEDIA_TYPES = {".mkv": "video/x-matroska", ".mp4": "video/mp4", ".png": "image/png"}
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="The job's id (24 hex).")]


def _errors(*pairs: tuple[int, str]) -> dict[int | str, dict[str, object]]:
    return {status: {"model": ErrorOut, "description": text} for status, text in pairs}


_AUTH_ERRORS = ((401, "No token, or an expired, forged or revoked one."),)


def own_job(services: Services, job_id: str, user: User) -> Job:
    """The job ``job_id`` if ``user`` requested it.

    Raises:
        NotFoundError: no such job, or another user's (which does not exist for ``user``).
    """
    job = services.jobs.store.get(job_id)
    if job is None or job.owner != user.name:  # another user's job does not exist for you
        raise NotFoundError(f"no reconstruction job {job_id!r} of yours")
    return job


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    responses={
        202: {
            "description": "Accepted: the job is queued, or pending approval when "
            "`jobs.require_approval` is on. `Location` names it."
        },
        **_errors(
            (400, "Not valid multipart/form-data."),
            *_AUTH_ERRORS,
            (403, "Only investigators may reverse."),
            (413, "The upload is over `limits.max_clip_bytes`."),
            (415, "Not a video."),
            (
                422,
                "A field is missing or invalid, the video is truncated or corrupt, or its frames "
                f"are under {MIN_FRAME_SIDE} pixels a side (`unsupported_frame_size`).",
            ),
            (503, "The job queue is full (`Retry-After`), or the audit log is unavailable."),
        ),
    },
    openapi_extra=multipart_schema(
        "clip",
        "A recorded public clip from the edge: a lossless evidence file (FFV1/MKV, or "
        "H.264 RGB qp 0 in MP4/MKV/MPEG-TS) whose frames carry the LSB ROI message, or the "
        "lossy public stream (messages in SEI: refused unless "
        "`messages.require_authentication` is false, then reversed as unverified).",
        REASON_SCHEMA,
    ),
    summary="Submit a clip for reversal (asynchronous)",
)
async def submit_reconstruction(
    request: Request,
    user: Annotated[
        User,
        Depends(authorize("reconstruct_clip", {Role.investigator}, reversal_kind="clip")),
    ],
    services: ServicesDep,
) -> JSONResponse:
    """Store the clip and queue a job; returns 202 with the job.

    With ``jobs.require_approval`` the job is ``pending_approval`` instead (audited
    ``pending``) until a second user, an approver, decides it (``/v1/approvals``); approved, it
    is queued and runs as any job; refused, it ends ``refused``. Either way ``approval`` says
    who decided, when and why.

    What can be checked at once is (size, fields, that it is a readable video); the frames'
    messages are checked while the job runs, and a job that meets a missing, malformed or
    forged message, an unknown model or a truncated stream ends ``failed`` with that error,
    which ``GET .../result`` then returns as a 4xx. Each attempt is audited before the response,
    and the job's end is audited again."""
    attempt = current_attempt(request)
    upload = await read_multipart(
        request,
        limit=services.settings.limits.max_clip_bytes,
        file_field="clip",
        text_fields=REASON_FIELDS,
    )
    job_id = services.jobs.new_job_id()
    attempt.job_id = job_id
    path = services.jobs.upload_path(job_id)
    try:
        try:
            case_id, justification = take_reason(attempt, upload.fields)
            attempt.clip_sha256, size = await run_in_threadpool(save_upload, upload.file.file, path)
        finally:
            await upload.file.close()
        info = await run_in_threadpool(inspect_clip, path)
        attempt.frames = expected_frames(info)
        services.jobs.ensure_capacity()
        pending = services.jobs.require_approval
        services.record(
            attempt.entry(
                "pending" if pending else "granted",
                f"job {'pending approval' if pending else 'queued'}: "
                f"{info.width}x{info.height} {info.codec}, {size} bytes, "
                f"{attempt.frames if attempt.frames is not None else 'unknown'} frames declared",
            )
        )
        attempt.recorded = True
        job = services.jobs.submit(
            job_id=job_id,
            owner=user.name,
            case_id=case_id,
            justification=justification,
            clip_sha256=attempt.clip_sha256,
            clip_bytes=size,
            frames_total=attempt.frames,
        )
    except BaseException:
        services.jobs.discard_upload(job_id)  # written here, or already in the clip store
        # Recorded as accepted but the job could not be stored: let the error handler record
        # the final outcome too, so the log never shows an acceptance that did not happen.
        attempt.recorded = False
        raise
    return JSONResponse(
        JobOut.of(job).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/reconstructions/{job.id}"},
    )


@router.get(
    "/{job_id}",
    response_model=JobOut,
    responses=_errors(*_AUTH_ERRORS, (403, "Only investigators."), (404, "No such job of yours.")),
    summary="Status, progress and report of a job",
)
def get_reconstruction(
    job_id: JobId,
    user: Annotated[User, Depends(authorize("read_job", {Role.investigator}, audit_success=False))],
    services: ServicesDep,
) -> JobOut:
    """The job as stored; ``report`` once it succeeded, ``error`` once it failed."""
    return JobOut.of(own_job(services, job_id, user))


@router.get(
    "/{job_id}/result",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"video/x-matroska": {}, "video/mp4": {}, "image/png": {}},
            "description": "The reconstructed clip, lossless: H.264 RGB qp 0 in MP4 by "
            "default, FFV1 (RGB) in Matroska when `jobs.result_codec` is `ffv1` or the frame "
            "size is odd; a PNG for a frame job (`kind: frame`).",
        },
        **_errors(
            *_AUTH_ERRORS,
            (403, "Only investigators; or an approver refused the job (`job_refused`)."),
            (404, "No such job of yours."),
            (
                409,
                "The job has not finished yet (`Retry-After`), or waits for approval "
                "(`job_pending_approval`).",
            ),
            (410, "The job expired; its result was deleted."),
            (415, "The job failed: the upload was not a video."),
            (
                422,
                "The job failed on the clip: truncated or corrupt video, no message, a "
                "malformed, forged or unverifiable message, or an unknown model.",
            ),
            (
                500,
                "The job failed inside the service, lost its worker (`worker_lost`), or its "
                "upload was missing from the clip store (`stored_object_missing`).",
            ),
            (503, "The clip store cannot be used (`storage_unavailable`), or the audit log."),
        ),
    },
    summary="Download the reconstructed clip (or frame)",
)
def get_reconstruction_result(
    request: Request,
    job_id: JobId,
    user: Annotated[User, Depends(authorize("download_result", {Role.investigator}))],
    services: ServicesDep,
) -> Response:
    """The clip with the original faces, streamed from the clip store; each download is
    audited."""
    job = own_job(services, job_id, user)
    attempt = current_attempt(request)
    attempt.case_id, attempt.justification = job.case_id, job.justification
    attempt.clip_sha256, attempt.job_id = job.clip_sha256, job.id
    require_succeeded(job)
    if not job.result_name:
        raise GoneError(f"the result of job {job.id} is no longer on disk")
    try:
        stored = services.jobs.clips.open(result_key(job.result_name))
    except ObjectMissingError as exc:
        raise GoneError(f"the result of job {job.id} is no longer on disk") from exc
    suffix = PurePath(job.result_name).suffix
    report = job.report or {}
    attempt.model_ids = ",".join(report.get("model_ids", []))
    attempt.frames = report.get("frames")
    try:
        services.record(attempt.entry("granted", f"result {job.result_name} downloaded"))
    except BaseException:
        stored.close()
        raise
    attempt.recorded = True
    media_type = _MEDIA_TYPES.get(suffix, "application/octet-stream")
    filename = f"reconstruction-{job.id}{suffix}"
    if stored.path is not None:  # a directory store: served as the file (ranges, ETag)
        stored.close()
        return FileResponse(stored.path, media_type=media_type, filename=filename)
    headers = {
        "Content-Length": str(stored.size),
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    return StreamingResponse(stored.chunks, media_type=media_type, headers=headers)
