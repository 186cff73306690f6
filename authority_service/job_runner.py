"""Running one reversal job: reverse its upload into its result, keep its face data and
preview, update its row and audit how it ended (:class:`JobRunner`). Who runs it and when (the
service's worker threads, or a remote worker's task after claiming it) is
:class:`authority_service.jobs.JobManager`'s.

Its upload is read from, and its result, face data and preview stored in, the clip store
(:mod:`authority_service.clip_store`); a store that fails ends the job ``failed`` with the
store's error (``storage_unavailable``, ``stored_object_missing``), audited.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from authority_service.audit import AuditEntry
from authority_service.clip_store import (
    ClipStore,
    ClipStoreError,
    DirectoryClipStore,
    result_key,
    upload_key,
)
from authority_service.config import JobSettings
from authority_service.errors import ClipError
from authority_service.face_sidecar import FACES_SUFFIX, FaceSidecarWriter
from authority_service.frame_job import FRAME_RESULT_SUFFIX, reconstruct_frame_file
from authority_service.job_store import Decision, Job, JobKind, JobStore
from authority_service.metrics import Metrics
from authority_service.parallel import reconstruct_clip
from authority_service.preview_media import make_public_preview, preview_path
from authority_service.reconstruction import (
    RESULT_SUFFIX,
    ClipReport,
    ReconstructionCancelledError,
    Reconstructor,
)

__all__ = ["JobRunner", "Reverse", "upload_path"]

log = logging.getLogger("authority_service.jobs")

#: ``reverse(upload, partial result, partial face data) -> report`` (:meth:`JobRunner.run`).
Reverse = Callable[[Path, Path, Path], ClipReport]


def upload_path(uploads_dir: Path, job_id: str) -> Path:
    """Where the upload of job ``job_id`` waits."""
    return uploads_dir / f"{job_id}.clip"


class JobRunner:
    """Runs one claimed job at a time per call (:meth:`run`); ``stopping`` set: the job in
    progress stops and is queued again."""

    def __init__(
        self,
        store: JobStore,
        reconstructor: Reconstructor,
        audit: Callable[[AuditEntry], object],
        settings: JobSettings,
        uploads_dir: Path,
        results_dir: Path,
        metrics: Metrics | None,
        *,
        stopping: threading.Event,
        clips: ClipStore | None = None,
    ) -> None:
        self.store = store
        self.reconstructor = reconstructor
        self.audit = audit
        self.settings = settings
        self.uploads_dir = uploads_dir
        self.results_dir = results_dir
        self.metrics = metrics
        self.stopping = stopping
        #: Where uploads are read and results stored (default: the two folders).
        self.clips = clips or DirectoryClipStore(uploads_dir, results_dir)

    def audit_finish(self, job: Job, outcome: str, detail: str, report: ClipReport | None) -> None:
        if job.decision == Decision.approved:
            detail = f"{detail}; approved by {job.decided_by} at {job.decided_at}"
        self.audit(
            AuditEntry(
                actor=job.owner,
                role="investigator",
                action=f"reconstruct_{job.kind}",
                outcome=outcome,
                case_id=job.case_id,
                justification=job.justification,
                clip_sha256=job.clip_sha256,
                model_ids=",".join(report.model_ids) if report else None,
                frames=report.frames if report else None,
                job_id=job.id,
                detail=detail,
            )
        )

    def run(self, job: Job, reverse: Reverse | None = None, preview: Path | None = None) -> bool:
        """Reverse ``job`` into its result; return ``False`` when shutdown interrupted it (it is
        queued again), ``True`` once it is finished (and audited). Its local working files that
        are not the store's (an S3 store's downloaded upload) are deleted however it ends.

        ``reverse(upload, partial result, partial face data)``, when given, makes the result
        instead of a reversal here (the join of a clip's segments reversed by the job queue's
        workers, :mod:`authority_service.segment_tasks`); what it raises ends the job as what a
        reversal raises does. ``preview``: the public preview of a clip job, made already
        (beside its segments); else it is made once the result is."""
        try:
            return self._reverse(job, reverse, preview)
        finally:
            self.clips.release_job_files(job.id)

    def _reverse(self, job: Job, reverse: Reverse | None, preview: Path | None) -> bool:
        upload = upload_path(self.uploads_dir, job.id)  # named in the log; fetched below
        partial = self.clips.work_dir / f"{job.id}.partial"
        faces_partial = self.clips.work_dir / f"{job.id}.faces.partial"
        if reverse is None:  # else running already, since its segments were handed out
            self.store.mark_running(job.id)
        started = time.monotonic()
        last_update = [0.0]

        def progress(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last_update[0] >= 0.5:
                last_update[0] = now
                self.store.set_progress(job.id, done, total)

        log.info("job %s: reconstructing %s (case %s)", job.id, upload.name, job.case_id)
        try:
            upload = self.clips.local_copy(upload_key(job.id))  # a directory's: in place
            if reverse is not None:
                report = reverse(upload, partial, faces_partial)
            elif job.kind == JobKind.frame:
                report = reconstruct_frame_file(self.reconstructor, upload, partial)
            else:
                with FaceSidecarWriter(faces_partial) as faces:  # removed if this fails
                    report = reconstruct_clip(  # in segments with jobs.segment_workers > 1
                        self.reconstructor,
                        upload,
                        partial,
                        workers=self.settings.segment_workers,
                        segment_frames=self.settings.segment_frames,
                        codec=self.settings.result_codec,
                        fallback_to_ffv1=True,
                        progress=progress,
                        cancelled=self.stopping.is_set,
                        on_frame=faces.add,
                    )
        except ReconstructionCancelledError:
            log.warning("job %s: interrupted by shutdown; it stays queued", job.id)
            self.store.requeue(job.id)
            return False
        except ClipError as exc:
            detail = exc.detail
            frame = exc.extra.get("frame")
            if frame is not None and not detail.startswith("frame "):
                detail = f"frame {frame}: {detail}"
            log.warning("job %s: refused: %s", job.id, detail)
            # Audited before the row says so: whoever sees the job end finds its record, and a
            # record that cannot be written leaves the job to run again, never unaudited.
            self.audit_finish(job, "refused", f"{exc.code}: {detail}", None)
            self.store.mark_failed(job.id, exc.code, detail)
            self.count(job, "refused")
            self.discard_upload(job.id)
            return True
        except ClipStoreError as exc:
            self.fail_storage(job, exc)
            return True
        except Exception as exc:
            # Its message may name server paths or errno values: logged here, never returned.
            log.exception("job %s: failed", job.id)
            detail = (
                f"the reconstruction failed inside the service ({type(exc).__name__}); "
                "the service log has the details"
            )
            self.audit_finish(job, "failed", f"internal_error: {detail}", None)
            self.store.mark_failed(job.id, "internal_error", detail)
            self.count(job, "failed")
            return True
        suffix = FRAME_RESULT_SUFFIX if job.kind == JobKind.frame else None
        result_name = job.id + (suffix or RESULT_SUFFIX[report.result_codec])
        try:
            self.store_results(
                job, report.fps, upload, partial, faces_partial, result_name, preview
            )
        except ClipStoreError as exc:
            self.fail_storage(job, exc)
            return True
        detail = (
            f"{report.frames} frames, {report.frames_reconstructed} reconstructed, "
            f"{report.frames_without_message} without message, {report.faces} faces, "
            f"{report.unverified_frames} unverified (messages from {report.message_source}); "
            f"{report.faces_by_method.detail()}"
        )
        self.audit_finish(job, "completed", detail, report)  # before the row, as above
        self.store.mark_succeeded(job.id, result_name, report)
        self.discard_upload(job.id)
        self.count(job, "completed")
        if self.metrics is not None:
            self.metrics.job_seconds.observe(time.monotonic() - started)
            self.metrics.faces.inc(report.faces)
            self.metrics.frames.labels("reconstructed").inc(report.frames_reconstructed)
            self.metrics.frames.labels("no_message").inc(report.frames_without_message)
            self.metrics.frames.labels("no_face").inc(
                report.frames_with_message - report.frames_reconstructed
            )
        log.info("job %s: done, %s in %.1f s", job.id, detail, report.seconds)
        return True

    def store_results(
        self,
        job: Job,
        fps: float,
        upload: Path,
        partial: Path,
        faces_partial: Path,
        result_name: str,
        preview: Path | None = None,
    ) -> None:
        """Put the result (and a clip's face data and public preview, made now unless
        ``preview`` is given) into the clip store (a directory: renamed into place).

        Raises:
            ClipStoreError: the store refused them.
        """
        self.clips.put(partial, result_key(result_name))
        if job.kind == JobKind.clip:
            self.clips.put(faces_partial, result_key(job.id + FACES_SUFFIX))
            # The uploaded clip is deleted next: its watermarked preview is made now.
            preview = preview or make_public_preview(self.clips.work_dir, job, upload, fps)
            if preview is not None:
                name = preview_path(self.clips.work_dir, job.id, "public", "rgb").name
                self.clips.put(preview, result_key(name))

    def fail_storage(self, job: Job, exc: ClipStoreError) -> None:
        """End ``job`` ``failed`` with the store's error (its cause logged, not returned)."""
        log.error("job %s: the clip store failed: %s", job.id, exc)
        self.audit_finish(job, "failed", f"{exc.code}: {exc.detail}", None)  # before the row
        self.store.mark_failed(job.id, exc.code, exc.detail)
        self.count(job, "failed")

    def discard_upload(self, job_id: str) -> None:
        """Delete a finished job's upload from the store; one the store fails to delete is
        logged and left to the job's expiry."""
        try:
            self.clips.delete(upload_key(job_id))
        except ClipStoreError as exc:
            log.error("job %s: its upload stays until the job expires: %s", job_id, exc)

    def count(self, job: Job, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.reversals.labels(job.kind, outcome).inc()
