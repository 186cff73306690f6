"""What the investigator's browser plays: watermarked previews and the face overlay of a clip job.

The functions the HTTP routes call, for a bearer's user (``/v1/reconstructions/{id}/preview/
{which}.mp4`` and ``.../faces``, :mod:`authority_service.api.routes.previews`) and the
console's cookie routes for a signed-in one alike:

``preview_file(services, job, which, variant, user) -> Path``
    The MP4 preview of ``which`` (``public`` | ``result``) in ``variant``: ``yuv444`` for
    Chromium, ``rgb`` exact (Chromium shows it in false colours), ``yuv420`` for other
    browsers (:mod:`authority_service.preview_media`); made on first request and cached.
    Serve it with :func:`authority_service.api.byte_ranges.media_response`.
``face_overlay(services, job, user) -> dict``
    Every frame's boxes and how each was reversed, with its presentation time
    (:func:`face_overlay` says the shape).
``record_view(services, entry, *, which, start) -> bool``
    Audit one request of a preview, unless it continues a view already audited.

Access is the result's (:func:`authority_service.jobs.require_succeeded`): an investigator,
the job's requester (another user's job is ``not_found``), a job that succeeded; a frame job
has no preview (``preview_unavailable``).

**When previews are made.** The public clip's ``rgb`` preview is made when the job succeeds,
before its uploaded clip is deleted (:func:`~authority_service.preview_media.
make_public_preview`): the upload is not kept past the job, as before. Every other preview is
made on its first request from what stays until expiry: the result's ``rgb`` from the result,
each ``yuv444`` and ``yuv420`` from its clip's ``rgb``. Measured for a 16-frame 640x480 clip
on one shared core: 0.5-0.65 s for the public ``rgb`` at job end (about its reconstruction's
time with the toy model, 0.6 s), then 0.4 s for the result's ``rgb`` and 0.4 s for each
``yuv444`` / ``yuv420`` on first request (a first ``yuv444`` of the result pays both: 0.8 s).
Doing all at job end would spend that on jobs nobody views, and the lossless previews are as
large as the result. The watermark names the requester, the case and the time the preview was
made (UTC). With an S3 clip store, what is read from the bucket (the public preview, the face
data, the result to transcode) is cached in the API's ``data_dir/results`` beside the previews
made there (:meth:`authority_service.clip_store.ClipStore.cached`); expiry deletes them.

**Audit.** A ``<video>`` issues many range requests for one view (``bytes=0-``, then one per
seek), so a preview request is audited (action ``view_preview``) when it starts a view (no
``Range``, or one from byte 0) or when no request of the same user, job and clip (``which``)
was audited in the last :data:`VIEW_AUDIT_WINDOW_S` seconds; the others are not (the window's
memory is the process's: a restart audits the next request). Every read of the face data is
audited (``read_faces``). A refused request is audited as always.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from authority_service.audit import AuditEntry
from authority_service.clip_store import ObjectMissingError, result_key
from authority_service.errors import (
    AuthorityError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PreviewUnavailableError,
)
from authority_service.face_sidecar import FACES_SUFFIX, FaceSidecarError, read_face_sidecar
from authority_service.job_store import Job, JobKind
from authority_service.jobs import require_succeeded
from authority_service.preview_media import (
    VARIANTS,
    WHICH,
    clip_rate,
    preview_path,
    write_preview,
)
from authority_service.users import Role, User
from authority_service.watermark import WatermarkText
from shared.video_io import VideoDecodeError

if TYPE_CHECKING:
    from authority_service.service import Services

__all__ = [
    "VIEW_AUDIT_WINDOW_S",
    "PreviewState",
    "face_overlay",
    "faces_path",
    "preview_file",
    "record_view",
]

log = logging.getLogger(__name__)

#: A preview request that does not start a view is audited if none of the same user, job and
#: clip was in this many seconds.
VIEW_AUDIT_WINDOW_S = 600.0
_MAX_REMEMBERED_VIEWS = 4096


class PreviewState:
    """What the previews of one service share: a lock per preview being made (parallel range
    requests wait for one transcode) and when each (user, job, clip) view was last audited."""

    def __init__(self, view_window_s: float = VIEW_AUDIT_WINDOW_S) -> None:
        self.view_window_s = view_window_s
        self._lock = threading.Lock()
        self._making: dict[Path, list[Any]] = {}  # path -> [lock, waiters]
        self._views: dict[tuple[str, str, str], float] = {}

    @contextmanager
    def making(self, path: Path) -> Iterator[None]:
        """Hold the lock of the preview ``path`` (one maker at a time per file)."""
        with self._lock:
            entry = self._making.setdefault(path, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._making[path]

    def view_due(self, key: tuple[str, str, str], starts_view: bool) -> bool:
        """Whether a request of ``key`` (user, job, clip) is to be audited."""
        if starts_view:
            return True
        with self._lock:
            last = self._views.get(key)
        return last is None or time.monotonic() - last >= self.view_window_s

    def viewed(self, key: tuple[str, str, str]) -> None:
        """Note that a request of ``key`` was just audited."""
        now = time.monotonic()
        with self._lock:
            self._views[key] = now
            if len(self._views) > _MAX_REMEMBERED_VIEWS:
                expired = [k for k, t in self._views.items() if now - t >= self.view_window_s]
                for old in expired or list(self._views)[: len(self._views) // 2]:
                    del self._views[old]


def faces_path(results_dir: Path, job_id: str) -> Path:
    """Where a clip job's face data is kept."""
    return results_dir / (job_id + FACES_SUFFIX)


def _check(job: Job, user: User) -> None:
    """The access rule of the module docstring."""
    if user.role != Role.investigator:
        raise PermissionDeniedError(
            f"role {user.role.value!r} may not view reversed faces; it needs investigator"
        )
    if job.owner != user.name:  # another user's job does not exist for you
        raise NotFoundError(f"no reconstruction job {job.id!r} of yours")
    require_succeeded(job)
    if job.kind != JobKind.clip:
        raise PreviewUnavailableError(
            f"job {job.id} reversed a single frame: it has no video preview or face data; "
            "its result is the PNG",
        )


def _fps(job: Job) -> float:
    fps = (job.report or {}).get("fps")
    if not fps:
        raise PreviewUnavailableError(f"job {job.id}'s report has no frame rate")
    return float(fps)


def preview_file(services: Services, job: Job, which: str, variant: str, user: User) -> Path:
    """The ``variant`` preview of ``job``'s ``which`` clip, made now if it was not yet.

    ``which``: ``public`` (the uploaded clip) or ``result`` (the reconstruction); ``variant``:
    ``yuv444`` (Chromium), ``rgb`` (exact, for tools) or ``yuv420`` (other browsers). The
    file (0600, in the results directory) is never modified once made; serve it with
    :func:`authority_service.api.byte_ranges.media_response`. Nothing is audited here.

    Raises:
        PermissionDeniedError: ``user`` is not an investigator; ``job_refused``.
        NotFoundError: ``job`` is not ``user``'s.
        GoneError / ConflictError / AuthorityError: the job is not succeeded
            (:func:`~authority_service.jobs.require_succeeded`); ``job_expired`` also when its
            result is no longer on disk.
        InvalidRequestError: ``which`` or ``variant`` is none of the above.
        PreviewUnavailableError: a frame job, or a public preview that was never made (a job
            finished before previews existed, or its making failed: the log says).
        AuthorityError: ``internal_error``: the preview cannot be made (logged).
    """
    _check(job, user)
    if which not in WHICH:
        raise InvalidRequestError(f"which must be one of {list(WHICH)}", field="which")
    if variant not in VARIANTS:
        raise InvalidRequestError(f"variant must be one of {list(VARIANTS)}", field="variant")
    return _ensure(services, job, which, variant, user)


def _ensure(services: Services, job: Job, which: str, variant: str, user: User) -> Path:
    results = services.jobs.clips.cache_dir  # a directory store's results folder
    path = preview_path(results, job.id, which, variant)
    if path.is_file():
        return path
    with services.previews.making(path):
        if path.is_file():  # made while this request waited
            return path
        if variant == "rgb" and which == "public":
            try:  # made by the job's worker: in the clip store
                return services.jobs.clips.cached(result_key(path.name))
            except ObjectMissingError as exc:
                raise PreviewUnavailableError(
                    f"job {job.id} has no preview of its public clip: it was not made when the "
                    "job finished, and the uploaded clip is deleted"
                ) from exc
        if variant == "rgb":
            try:
                source = services.jobs.clips.cached(result_key(job.result_name or ""))
            except (ObjectMissingError, ValueError) as exc:
                raise GoneError(f"the result of job {job.id} is no longer on disk") from exc
            text: WatermarkText | None = WatermarkText(
                user.name, job.case_id, datetime.now(timezone.utc), job.id
            )
        else:
            source, text = _ensure(services, job, which, "rgb", user), None
        try:
            write_preview(source, path, variant, _fps(job), text)
        except (VideoDecodeError, OSError, ValueError, av.FFmpegError) as exc:
            log.exception("job %s: the %s %s preview cannot be made", job.id, which, variant)
            raise AuthorityError(
                "the preview cannot be made; the service log says why", code="internal_error"
            ) from exc
    return path


def face_overlay(services: Services, job: Job, user: User) -> dict[str, Any]:
    """Every frame of ``job``'s clip with its ROI message's boxes and how each was reversed.

    Returns::

        {"job_id", "width", "height",      # the clip's frame size (boxes are in its pixels)
         "fps": 25.0, "frame_rate": "25/1",  # of the result and the previews
         "frame_count": 12,
         "faces": 38, "sealed": 0, "ud": 38, "ud_reasons": {"no_payload": 38},
         "boxes_omitted": 0,               # past face_sidecar.MAX_SIDECAR_BOXES: counted only
         "frames": [{"index": 0, "t": 0.0, "message": true,
                     "boxes": [{"x": 8, "y": 16, "w": 64, "h": 64,
                                "method": "ud", "reason": "no_payload"},
                               {..., "method": "sealed", "codec": "png"}]}, ...]}

    Frame ``index`` is shown from ``t`` (seconds, ``index / frame_rate``: its presentation
    time in the result and in every preview) until the next frame's ``t``. ``message`` is
    false for a frame that carries no ROI message (passed through unchanged). Nothing is
    audited here.

    Raises:
        The errors of :func:`preview_file` about the job and user.
        PreviewUnavailableError: no face data was recorded for the job (finished before it was
            recorded).
        AuthorityError: ``internal_error``: the face data is damaged (logged).
    """
    _check(job, user)
    try:
        path = services.jobs.clips.cached(result_key(job.id + FACES_SUFFIX))
    except ObjectMissingError as exc:
        raise PreviewUnavailableError(f"no face data was recorded for job {job.id}") from exc
    try:
        sidecar = read_face_sidecar(path)
    except FaceSidecarError as exc:
        log.error("job %s: %s", job.id, exc)
        raise AuthorityError(
            "the face data of the job is damaged; the service log says why", code="internal_error"
        ) from exc
    rate = clip_rate(_fps(job))
    report = job.report or {}
    counts = {"sealed": 0, "ud": 0}
    reasons: dict[str, int] = {}
    frames = []
    for frame in sidecar.frames:
        boxes = []
        for x, y, w, h, method, how in frame.boxes:
            counts[method] = counts.get(method, 0) + 1
            if method == "ud":
                reasons[how] = reasons.get(how, 0) + 1
            key = "reason" if method == "ud" else "codec"
            boxes.append({"x": x, "y": y, "w": w, "h": h, "method": method, key: how})
        time_s = round(float(frame.index / rate), 6)
        frames.append({"index": frame.index, "t": time_s, "message": frame.message, "boxes": boxes})
    return {
        "job_id": job.id,
        "width": report.get("width"),
        "height": report.get("height"),
        "fps": float(rate),
        "frame_rate": f"{rate.numerator}/{rate.denominator}",
        "frame_count": len(frames),
        "faces": sidecar.boxes + sidecar.boxes_omitted,
        **counts,
        "ud_reasons": reasons,
        "boxes_omitted": sidecar.boxes_omitted,
        "frames": frames,
    }


def record_view(services: Services, entry: AuditEntry, *, which: str, start: int | None) -> bool:
    """Audit ``entry`` (a granted request of a preview of ``entry.job_id``'s ``which`` clip by
    ``entry.actor``) unless it continues a view already audited; return whether it did.

    ``start``: the first byte the response sends (``None``: the whole file); a request from
    byte 0 or for the whole file starts a view and is always audited (module docstring).
    Pass it as :func:`~authority_service.api.byte_ranges.media_response`'s ``before_send``.

    Raises:
        Whatever ``services.record`` raises (the audit log cannot be written: fail closed).
    """
    key = (entry.actor, entry.job_id or "", which)
    if not services.previews.view_due(key, starts_view=start in (None, 0)):
        return False
    services.record(entry)
    services.previews.viewed(key)
    return True
