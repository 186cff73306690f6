"""Running one reversal job: reverse its upload into its result, keep its face data and
preview, update its row and audit how it ended (:class:`JobRunner`). Who runs it and when (the
service's worker threads, or a remote worker's task after claiming it) is
:class:`authority_service.jobs.JobManager`'s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from authority_service.audit import AuditEntry
from authority_service.config import JobSettings
from authority_service.errors import ClipError
from authority_service.face_sidecar import FACES_SUFFIX, FaceSidecarWriter
from authority_service.frame_job import FRAME_RESULT_SUFFIX, reconstruct_frame_file
from authority_service.job_store import Decision, Job, JobKind, JobStore
from authority_service.metrics import Metrics
from authority_service.parallel import reconstruct_clip
from authority_service.preview_media import make_public_preview
from authority_service.reconstruction import (
    RESULT_SUFFIX,
    ClipReport,
    ReconstructionCancelledError,
    Reconstructor,
)

__all__ = ["JobRunner", "upload_path"]

log = logging.getLogger("authority_service.jobs")


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
    ) -> None:
        self.store = store
        self.reconstructor = reconstructor
        self.audit = audit
        self.settings = settings
        self.uploads_dir = uploads_dir
        self.results_dir = results_dir
        self.metrics = metrics
        self.stopping = stopping

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

    def run(self, job: Job) -> bool:
        """Reverse ``job`` into its result; return ``False`` when shutdown interrupted it (it is
        queued again), ``True`` once it is finished (and audited)."""
        upload = upload_path(self.uploads_dir, job.id)
        partial = self.results_dir / f"{job.id}.partial"
        faces_partial = self.results_dir / f"{job.id}.faces.partial"
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
            if not upload.is_file():
                raise FileNotFoundError(f"upload of job {job.id} is missing")
            if job.kind == JobKind.frame:
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
            upload.unlink(missing_ok=True)
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
        partial.replace(self.results_dir / result_name)
        if job.kind == JobKind.clip:
            faces_partial.replace(self.results_dir / (job.id + FACES_SUFFIX))
            # The uploaded clip is deleted next: its watermarked preview is made now.
            make_public_preview(self.results_dir, job, upload, report.fps)
        detail = (
            f"{report.frames} frames, {report.frames_reconstructed} reconstructed, "
            f"{report.frames_without_message} without message, {report.faces} faces, "
            f"{report.unverified_frames} unverified (messages from {report.message_source}); "
            f"{report.faces_by_method.detail()}"
        )
        self.audit_finish(job, "completed", detail, report)  # before the row, as above
        self.store.mark_succeeded(job.id, result_name, report)
        upload.unlink(missing_ok=True)
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

    def count(self, job: Job, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.reversals.labels(job.kind, outcome).inc()
