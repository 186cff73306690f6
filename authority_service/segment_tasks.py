"""Long clips split across the job queue's workers (``jobs.queue: celery`` with
``jobs.distribute_segments``): a clip job's segments become tasks that any
``uunet-authority worker`` takes, and are joined into one result, the one a single pass gives.

* **Split** (:meth:`SegmentTasks.split`, in the job's own task, after its claim): the clip is
  planned (:func:`~authority_service.segments.plan_segments`: ranges of ``jobs.segment_frames``
  frames), its segments stored ``queued`` (:mod:`authority_service.segment_store`) with one
  more unit for the job's public preview (a re-encode of the whole upload, which a whole job
  makes after its result: beside the segments here, not after the join), then one message per
  unit sent (job id, the job's start, index; the preview's first). The job's task then ends:
  no task ever waits on another (a full pool cannot deadlock). A clip that does not split (at
  most ``segment_frames`` frames, packets that cannot be planned, a broker that refuses the
  messages) is reversed whole by that task, as before.
* **Segment** (:meth:`SegmentTasks.run`): the task claims its segment, builds the spec from the
  stored plan (its own worker's reconstructor, decoders and keys: nothing of them travels in a
  message), reverses it into its own part file
  (:func:`~authority_service.segments.reverse_segment`; in the shared data directory, or
  stored in the S3 bucket: :mod:`authority_service.segment_parts`) while a thread renews the
  segment's lease and the job's, writes the progress (the job's ``frames_done``: frames done
  over all segments) and learns whether to stop. It stops when an earlier segment failed (one
  pass stops at the first failing frame), when the job no longer runs this start, and at a
  warm shutdown (the segment queued again, its message put back).
* **Join** (:mod:`authority_service.segment_join`, in the task of the unit that ends last: one
  transaction decides, :meth:`~authority_service.segment_store.SegmentStore.finish`): the
  outcomes are settled as
  one pass decides (:func:`~authority_service.segment_merge.settle`: the clip's carrier, the
  first failure in clip order; a segment to reverse again is queued again instead), the parts
  joined and the reports merged (:func:`~authority_service.segment_merge.merge_segments`), and
  the job finished exactly as a whole job finishes
  (:meth:`~authority_service.job_runner.JobRunner.run`: result renamed into place, face data,
  preview, audited before its row says so). A segment plan the decoded frames do not match
  makes that task reverse the clip in one pass instead. Every part is then removed.

Failures: a worker lost mid-segment (its host, or its pool process) leaves the segment's
message unacknowledged; delivered again, it claims the segment once its lease is stale and
reverses it again into a new part; after ``jobs.max_attempts`` starts the job fails
(``worker_lost``, audited). A worker lost while joining leaves the last segment's message
unacknowledged too: delivered again, it takes the join over once the job's lease is stale.
A run that lost its claim (another took the segment, the job ended) removes its own part.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from authority_service.clip_checks import prepare_clip
from authority_service.clip_report import ClipReport
from authority_service.clip_store import ClipStoreError
from authority_service.errors import AuthorityError
from authority_service.job_store import Job
from authority_service.jobs import JobManager
from authority_service.preview_media import make_public_preview
from authority_service.reconstruction import ReconstructionCancelledError
from authority_service.segment_join import (
    DONE,
    FINISHED,
    GONE,
    SegmentJoin,
    segment_spec,
)
from authority_service.segment_parts import (
    discard_part,
    drop_local,
    part_path,
    segment_source,
    store_part,
)
from authority_service.segment_rows import (
    Finish,
    Segment,
    SegmentClaim,
    SegmentKind,
    Stop,
)
from authority_service.segment_store import SegmentStore
from authority_service.segments import (
    SegmentResult,
    SegmentWorkerError,
    init_worker,
    plan_segments,
    reverse_segment,
)
from shared.video_io import VideoInfo, expected_frames

__all__ = ["BUSY", "DONE", "FINISHED", "GONE", "REQUEUED", "SegmentTasks", "worker_name"]

log = logging.getLogger(__name__)

#: Outcomes of :meth:`SegmentTasks.run` besides those of the join (``busy``: deliver the
#: message again after ``jobs.lease_s``; ``requeued``: put it back now, the worker is shutting
#: down).
BUSY, REQUEUED = "busy", "requeued"


def worker_name() -> str:
    """This process, as a segment's row names who reversed it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class SegmentTasks:
    """The segment tasks of a worker process (module docstring).

    Args:
        jobs: the worker's job manager (its store, runner, reconstructor, settings, clip store).
        dispatch: sends ``(job id, the job's start, segment index)`` to the workers.
        worker: this process's name in the segments' rows.
    """

    def __init__(
        self,
        jobs: JobManager,
        dispatch: Callable[[str, int, int], None],
        worker: str | None = None,
    ) -> None:
        self.jobs = jobs
        self.settings = jobs.settings
        self.store = SegmentStore(jobs.store.db)
        self.dispatch = dispatch
        self.worker = worker or worker_name()
        self.joins = SegmentJoin(jobs, self.store, dispatch)

    # ---------------------------------------------------------------- split
    def split(self, job: Job) -> bool:
        """Hand the claimed clip job ``job``'s segments to the workers; ``False``: the clip is
        to be reversed whole by the caller (it does not split, or it cannot be read, which the
        caller then reports as it reports any clip)."""
        if not self.settings.distribute_segments:
            return False
        try:
            with segment_source(self.jobs.clips, job.id, f"{job.id}.seg-plan.clip") as upload:
                info, _ = prepare_clip(upload, self.settings.result_codec, fallback_to_ffv1=True)
                plan = plan_segments(upload, self.settings.segment_frames)
        except (AuthorityError, OSError, ValueError) as exc:
            log.info("job %s: not split (%s); reversed whole", job.id, type(exc).__name__)
            return False
        if plan is None or len(plan) < 2:
            return False
        self.store.plan(job.id, job.attempts, plan, preview=True)
        self.jobs.store.set_progress(job.id, 0, expected_frames(info))
        try:
            for segment in [len(plan), *range(len(plan))]:  # the preview, the longest, first
                self.dispatch(job.id, job.attempts, segment)
        except Exception:  # the broker's client raises its own errors
            log.exception("job %s: its segments cannot be sent; reversed whole here", job.id)
            self.store.delete(job.id)  # a segment message already sent finds nothing to do
            return False
        log.info(
            "job %s: %d frames in %d segment tasks",
            job.id,
            plan[-1][0] + len(plan[-1][1]),
            len(plan),
        )
        return True

    # ---------------------------------------------------------------- one segment
    def run(self, job_id: str, attempt: int, segment: int) -> str:
        """Reverse segment ``segment`` of start ``attempt`` of ``job_id``, and join the clip if
        it is the last to end.

        Returns:
            ``"done"`` (reversed, or stopped; others still open), ``"finished"`` (the job ended
            here: joined, failed, or out of starts), ``"gone"`` (nothing to do), ``"busy"``
            (another run holds the segment, or the join: deliver again after ``jobs.lease_s``)
            or ``"requeued"`` (interrupted by shutdown: the segment is queued again).
        """
        outcome, found = self.store.claim(
            job_id,
            attempt,
            segment,
            lease_s=self.settings.lease_s,
            max_attempts=self.settings.max_attempts,
            worker=self.worker,
        )
        if outcome == SegmentClaim.exhausted:
            self.joins.out_of_starts(job_id)
            return FINISHED
        if outcome == SegmentClaim.busy:
            return BUSY
        if outcome == SegmentClaim.ended:
            claim = self.store.claim_join(job_id, attempt, lease_s=self.settings.lease_s)
            if claim == "won":
                log.warning("job %s: its join is taken over (a worker was lost)", job_id)
                return self.joins.join(job_id, attempt)
            return BUSY if claim == "held" else GONE
        if outcome != SegmentClaim.claimed or found is None or found.token is None:
            return GONE
        if found.runs > 1:
            log.warning(
                "job %s: segment %d, start %d (a worker was lost)", job_id, segment, found.runs
            )
        return self._reverse(found)

    def _reverse(self, segment: Segment) -> str:
        token = segment.token
        assert token is not None
        done = [0]
        reason: list[str | None] = [None]
        finished = threading.Event()
        stop = threading.Event()
        stopping = self.jobs.runner.stopping  # set by a warm shutdown

        def beat() -> bool:
            try:
                reason[0] = self.store.beat(
                    segment.job_id, segment.attempt, segment.segment, token, done[0]
                )
            except SQLAlchemyError as exc:
                log.warning(
                    "job %s: segment lease not renewed (will retry): %s", segment.job_id, exc
                )
            if reason[0] is not None:
                stop.set()
            return stop.is_set()

        def beats() -> None:
            while not finished.wait(min(0.5, self.settings.lease_s / 4)):
                beat()

        if beat():
            return self._stopped(segment, token, reason[0])
        part = part_path(self.jobs.clips.work_dir, segment, token)
        with ExitStack() as stack:
            try:
                source = stack.enter_context(
                    segment_source(self.jobs.clips, segment.job_id, f"{part.name}.clip")
                )
                info, codec = prepare_clip(
                    source, self.settings.result_codec, fallback_to_ffv1=True
                )
            except (AuthorityError, OSError, ValueError) as exc:
                log.error(
                    "job %s: segment %d: the clip cannot be read: %s",
                    segment.job_id,
                    segment.segment,
                    exc,
                )
                failure = SegmentWorkerError(f"segment {segment.segment}: {type(exc).__name__}")
                return self._finish(
                    segment,
                    token,
                    SegmentResult(segment.segment, ClipReport(), None, failure=failure),
                    None,
                )
            if segment.kind == SegmentKind.preview:
                work = partial(self._make_preview, segment, source, info, part)
            else:
                init_worker(
                    self.jobs.reconstructor,
                    progress=lambda _, frames: done.__setitem__(0, frames),
                    stop=lambda _: stop.is_set() or stopping.is_set(),
                )
                work = partial(
                    reverse_segment,
                    segment_spec(segment, token, source, info, codec, self.jobs.clips.work_dir),
                )
            renewer = threading.Thread(
                target=beats, name=f"segment-lease-{segment.segment}", daemon=True
            )
            renewer.start()
            result: SegmentResult | None = None
            try:
                result = work()
            except ReconstructionCancelledError:
                pass
            finally:
                finished.set()
                renewer.join()
        if result is not None:
            return self._finish(segment, token, self._stored(segment, result, part), part)
        if stopping.is_set() and not stop.is_set():
            log.warning(
                "job %s: segment %d interrupted by shutdown; queued again",
                segment.job_id,
                segment.segment,
            )
            part.unlink(missing_ok=True)
            self.store.give_back(segment.job_id, segment.attempt, segment.segment, token)
            return REQUEUED
        return self._stopped(segment, token, reason[0])

    def _stored(self, segment: Segment, result: SegmentResult, part: Path) -> SegmentResult:
        """``result`` once its part is where the join reads it (:func:`store_part`); a part
        that cannot be stored fails the segment (the job then fails as at that frame)."""
        if result.failure is not None:
            drop_local(self.jobs.clips, part)  # the join reads no failed part
            return result
        try:
            store_part(self.jobs.clips, part)
        except ClipStoreError as exc:
            log.error(
                "job %s: segment %d: its part cannot be stored: %s",
                segment.job_id,
                segment.segment,
                exc,
            )
            part.unlink(missing_ok=True)
            failure = SegmentWorkerError(f"segment {segment.segment}: its part cannot be stored")
            return SegmentResult(segment.segment, ClipReport(), None, failure=failure)
        return result

    def _make_preview(
        self, segment: Segment, source: Path, info: VideoInfo, part: Path
    ) -> SegmentResult:
        """Make the job's public preview into ``part``, as a job makes it once its result is
        (:func:`~authority_service.preview_media.make_public_preview`, which logs a failure:
        the job then has none, as a whole job would)."""
        job = self.jobs.store.get(segment.job_id)
        assert job is not None
        started_at, started = time.time(), time.perf_counter()
        make_public_preview(self.jobs.clips.work_dir, job, source, float(info.fps), part)
        return SegmentResult(
            segment.segment,
            ClipReport(),
            None,
            seconds=time.perf_counter() - started,
            started_at=started_at,
        )

    def _stopped(self, segment: Segment, token: str, reason: str | None) -> str:
        if reason != Stop.earlier_failed:
            return GONE  # another run holds it, or the job ended: nothing of this run counts
        return self._finish(segment, token, None, None)

    def _finish(
        self, segment: Segment, token: str, result: SegmentResult | None, part: Path | None
    ) -> str:
        ended = self.store.finish(segment.job_id, segment.attempt, segment.segment, token, result)
        if ended == Finish.lost:
            if part is not None:
                discard_part(self.jobs.clips, part)
            return GONE
        if ended == Finish.more:
            return DONE
        return self.joins.join(segment.job_id, segment.attempt)
