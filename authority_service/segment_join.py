"""The end of a clip job split across the job queue's workers
(:mod:`authority_service.segment_tasks`): once its last segment has ended, its outcomes are
settled as one pass decides (:func:`~authority_service.segment_merge.settle`), a segment to
reverse again is queued again, or the parts are joined and the job finished through its runner
(:meth:`~authority_service.job_runner.JobRunner.run`), exactly as a whole job finishes. Also
what a segment's run and the join both need: where a run's part is, a segment's unit of work,
the clip read again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from authority_service.clip_checks import ResultCodec, prepare_clip
from authority_service.clip_report import ClipReport
from authority_service.clip_store import ClipStoreError, ObjectMissingError, upload_key
from authority_service.errors import AuthorityError, ClipError
from authority_service.face_sidecar import FaceSidecarWriter
from authority_service.job_store import Job, JobStatus
from authority_service.jobs import JobManager
from authority_service.segment_merge import Rerun, merge_segments, settle
from authority_service.segment_parts import drop_local_copies, fetch_part, part_path, remove_parts
from authority_service.segment_rows import Segment, SegmentKind, SegmentStatus
from authority_service.segment_store import SegmentStore
from authority_service.segments import (
    SegmentPlanError,
    SegmentResult,
    SegmentSpec,
    SegmentWorkerError,
)
from shared.video_io import VideoInfo

__all__ = ["DONE", "FINISHED", "GONE", "SegmentJoin", "part_path", "read_clip", "segment_spec"]

log = logging.getLogger("authority_service.segment_tasks")

#: Outcomes of a segment's task (:meth:`authority_service.segment_tasks.SegmentTasks.run`).
DONE, FINISHED, GONE = "done", "finished", "gone"


def segment_spec(
    segment: Segment,
    token: str,
    source: Path,
    info: VideoInfo,
    codec: ResultCodec,
    work_dir: Path,
) -> SegmentSpec:
    """The unit of work of ``segment``'s run ``token`` (its frames of ``source``)."""
    return SegmentSpec(
        index=segment.segment,
        source=source,
        part=part_path(work_dir, segment, token),
        start=segment.start,
        pts=segment.pts,
        seek_pts=segment.seek_pts,
        last=segment.last,
        info=info,
        codec=codec,
        carrier=segment.carrier,
        record_faces=True,
    )


def read_clip(jobs: JobManager, job_id: str) -> tuple[Path, VideoInfo, ResultCodec]:
    """The upload of ``job_id``, what its container says and its result's codec.

    Raises:
        AuthorityError / OSError / ValueError: as
            :func:`~authority_service.clip_checks.prepare_clip` and the clip store raise.
    """
    upload = jobs.clips.local_copy(upload_key(job_id))
    info, codec = prepare_clip(upload, jobs.settings.result_codec, fallback_to_ffv1=True)
    return upload, info, codec


class SegmentJoin:
    """Ends split clip jobs (module docstring).

    Args:
        jobs: the worker's job manager (store, runner, clip store).
        store: the segments.
        dispatch: sends ``(job id, the job's start, segment index)`` to the workers.
    """

    def __init__(
        self, jobs: JobManager, store: SegmentStore, dispatch: Callable[[str, int, int], None]
    ) -> None:
        self.jobs = jobs
        self.store = store
        self.dispatch = dispatch
        self.work_dir = jobs.clips.work_dir

    def join(self, job_id: str, attempt: int) -> str:
        """Settle the ended segments of start ``attempt`` of ``job_id``: queue one again
        (``"done"``), or finish the job (``"finished"``); ``"gone"``: it no longer runs."""
        job = self.jobs.store.get(job_id)
        if job is None or job.status != JobStatus.running or job.attempts != attempt:
            return GONE
        segments = self.store.segments(job_id, attempt)
        try:
            with self.jobs.lease(job_id):
                return self._settle(job, segments)
        finally:
            if (self.jobs.store.get(job_id) or job).status != JobStatus.running:
                self.discard(job_id)

    def _settle(self, job: Job, segments: list[Segment]) -> str:
        try:
            source, info, codec = read_clip(self.jobs, job.id)
        except (AuthorityError, OSError, ValueError):
            return self._whole(job)  # which reports why the clip cannot be read
        ranges = [s for s in segments if s.kind == SegmentKind.frames]
        specs = [segment_spec(s, s.token or "", source, info, codec, self.work_dir) for s in ranges]
        outcomes = {s.segment: s.result for s in ranges if s.status == SegmentStatus.done}
        try:
            lost = self._fetch_parts(segments)
        except ClipStoreError as exc:
            log.warning(
                "job %s: its parts cannot be read (%s); reversing it in one pass", job.id, exc
            )
            return self._whole(job)
        if lost is not None:
            log.warning(
                "job %s: the part of segment %d is missing; reversed again", job.id, lost.segment
            )
            drop_local_copies(self.jobs.clips, job.id, source)
            self.store.rerun(job.id, job.attempts, lost.segment, lost.carrier)
            self.dispatch(job.id, job.attempts, lost.segment)
            return DONE
        made = [
            part_path(self.work_dir, s, s.token or "")
            for s in segments
            if s.kind == SegmentKind.preview and s.status == SegmentStatus.done
        ]
        preview = made[0] if made and made[0].is_file() else None
        failure: Exception | None = None
        settled: tuple[list[SegmentResult], str | None] | Rerun | None = None
        try:
            settled = settle(specs, outcomes)
        except (ClipError, SegmentPlanError, SegmentWorkerError) as exc:  # the first one
            failure = exc
        if isinstance(settled, Rerun):
            log.info(
                "job %s: segment %d reversed again, with carrier %s",
                job.id,
                settled.index,
                settled.carrier,
            )
            drop_local_copies(self.jobs.clips, job.id, source)
            self.store.rerun(job.id, job.attempts, settled.index, settled.carrier)
            self.dispatch(job.id, job.attempts, settled.index)
            return DONE
        if isinstance(failure, SegmentPlanError):
            log.warning("job %s: %s; reversing it in one pass", job.id, failure)
            return self._whole(job, preview)
        merge = partial(self._merge, job, specs, settled, failure, info, codec, preview)
        self.jobs.runner.run(job, reverse=merge, preview=preview)
        return FINISHED

    def _fetch_parts(self, segments: list[Segment]) -> Segment | None:
        """Have the parts of the ended segments here (:func:`fetch_part`); return a reversed
        segment whose part is missing (to reverse again), else ``None``. A missing preview is
        left out (the job's runner then makes it).

        Raises:
            StoreUnavailableError: a part cannot be read.
        """
        for segment in segments:
            if segment.status != SegmentStatus.done or segment.token is None:
                continue
            try:
                fetch_part(self.jobs.clips, part_path(self.work_dir, segment, segment.token))
            except ObjectMissingError:
                result = segment.result
                if segment.kind == SegmentKind.frames and result is not None and not result.failure:
                    return segment
        return None

    def _whole(self, job: Job, preview: Path | None = None) -> str:
        """Reverse ``job``'s clip here, whole, as a job that did not split."""
        if not self.jobs.runner.run(job, preview=preview) and self.jobs.dispatch is not None:
            self.jobs.dispatch(job.id)  # interrupted by shutdown: queued again, sent again
        return FINISHED

    def _merge(
        self,
        job: Job,
        specs: list[SegmentSpec],
        settled: tuple[list[SegmentResult], str | None] | None,
        failure: Exception | None,
        info: VideoInfo,
        codec: ResultCodec,
        preview: Path | None,
        upload: Path,
        destination: Path,
        faces_file: Path,
    ) -> ClipReport:
        """Join the parts into ``destination`` and the face data into ``faces_file``; every
        part but the preview (which the job's runner puts in place) is removed, the preview
        too if this fails.

        Raises:
            The segments' first failure (``failure``); what
            :func:`~authority_service.segment_merge.merge_segments` raises.
        """
        try:
            if failure is not None:
                raise failure
            assert settled is not None
            results, carrier = settled
            with FaceSidecarWriter(faces_file) as faces:
                report = merge_segments(
                    specs, results, destination, info, codec, carrier, faces.add
                )
        except BaseException:
            if preview is not None:
                preview.unlink(missing_ok=True)
            raise
        finally:  # before the job's row says it ended
            self._remove_parts(job.id, keep=preview)
        started = datetime.fromisoformat(job.started_at) if job.started_at else None
        report.seconds = (datetime.now(timezone.utc) - started).total_seconds() if started else 0.0
        return report

    def out_of_starts(self, job_id: str) -> None:
        """Audit the end of a job that a segment's starts failed (``worker_lost``: its row says
        so already, as a job out of starts, :meth:`~authority_service.jobs.JobManager.run_job`)."""
        job = self.jobs.store.get(job_id)
        assert job is not None
        log.error("job %s: %s", job_id, job.error_detail)
        self.jobs.runner.audit_finish(job, "failed", f"worker_lost: {job.error_detail}", None)
        self.jobs.runner.count(job, "failed")
        self.discard(job_id)

    def discard(self, job_id: str) -> None:
        """The job has ended: remove its segments' parts, drop their results."""
        self._remove_parts(job_id)
        self.store.release(job_id)

    def _remove_parts(self, job_id: str, keep: Path | None = None) -> None:
        stored = [
            part_path(self.work_dir, s, s.token)
            for s in self.store.segments(job_id)
            if s.token is not None
        ]
        remove_parts(self.jobs.clips, job_id, stored, keep)
