"""Reverse a long clip in segments, side by side in worker processes, into the result one pass
over the whole clip gives: the same decoded frames bit for bit, the same report.

:func:`reconstruct_clip` (``jobs.segment_workers``, ``uunet-authority reconstruct --workers``)
plans the segments (:func:`~authority_service.segments.plan_segments`), hands each to a
process of a :class:`~concurrent.futures.ProcessPoolExecutor` (spawn start, one pool per clip,
at most ``workers`` processes, each given the reconstructor once when it starts: its decoders
load their own ONNX sessions there), joins the segments' files into ``destination`` and their
reports into one, then makes the checks one pass makes at its end
(:func:`~authority_service.segment_merge.merge_segments`: truncation, no message).

What one pass decides over the whole clip is decided here the same way
(:func:`~authority_service.segment_merge.settle`, which the job queue's segment tasks share,
:mod:`authority_service.segment_tasks`):

* **the message carrier** is chosen on the clip's first frame that carries a message. Each
  segment chooses on its own first such frame; the clip's is the first segment's that chose one,
  and a later segment that chose another carrier is reversed again with the clip's (a lossy
  stream whose LSB noise happens to announce a message after a segment boundary);
* **the first error wins**: one pass stops at the first failing frame, so a failing segment
  stops the segments after it (those not started are cancelled), the ones before it finish,
  and the earliest failure is raised (with its frame, exactly as one pass raises it); no
  result, and no segment file, is left behind;
* **``on_frame``** is called for every frame, in order, once the segments are joined (one pass
  calls it as each frame is read); **progress** is the frames done over all segments;
  **cancellation** (``cancelled()``, polled every 0.1 s) stops every worker at its next frame.

A clip that cannot be planned (see :func:`~authority_service.segments.plan_segments`), or whose
decoded frames turn out not to match the plan, is reversed in one pass in this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from functools import partial
from pathlib import Path
from queue import Empty
from typing import Any

from authority_service.clip_checks import ResultCodec, prepare_clip
from authority_service.clip_report import ClipReport
from authority_service.reconstruction import OnFrame, ReconstructionCancelledError, Reconstructor
from authority_service.segment_merge import Rerun, merge_segments, settle
from authority_service.segments import (
    SegmentPlanError,
    SegmentResult,
    SegmentSpec,
    SegmentWorkerError,
    init_worker,
    plan_segments,
    reverse_segment,
)
from shared.log_safety import configure_logging
from shared.video_io import expected_frames

__all__ = ["DEFAULT_SEGMENT_FRAMES", "SegmentedReversal", "reconstruct_clip"]

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_FRAMES = 512
_POLL_S = 0.1


def _start_worker(
    reconstructor: Reconstructor, progress: Any, stop_at: Any, log_level: int
) -> None:
    """Initializer of a worker process: its logging, and :func:`init_worker`."""
    configure_logging(log_level)
    progress.cancel_join_thread()  # exiting never waits on progress nobody reads any more
    init_worker(
        reconstructor,
        progress=lambda segment, done: progress.put((segment, done)),
        stop=lambda segment: segment >= stop_at.value,
    )


class SegmentedReversal:
    """One clip reversed in segments by up to ``workers`` processes (module docstring).

    After :meth:`run`: ``results`` (each segment's, in order; empty after a one-pass run),
    ``plan_s`` (planning), ``startup_s`` (from the pool's creation to its first segment
    starting: process start, imports), ``join_s`` (joining the files).
    """

    def __init__(
        self,
        reconstructor: Reconstructor,
        *,
        workers: int,
        segment_frames: int = DEFAULT_SEGMENT_FRAMES,
    ) -> None:
        self.reconstructor = reconstructor
        self.workers = workers
        self.segment_frames = segment_frames
        self.results: list[SegmentResult] = []
        self.plan_s = self.startup_s = self.join_s = 0.0
        self._done: dict[int, int] = {}

    def run(
        self,
        source: Path,
        destination: Path,
        *,
        codec: ResultCodec = "ffv1",
        fallback_to_ffv1: bool = False,
        progress: Callable[[int, int | None], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        on_frame: OnFrame | None = None,
    ) -> ClipReport:
        """Reverse ``source`` into ``destination``: what
        :meth:`~authority_service.reconstruction.Reconstructor.reconstruct_clip` does, with the
        same arguments, result and errors.

        Raises:
            What :meth:`~authority_service.reconstruction.Reconstructor.reconstruct_clip`
            raises, and :class:`~authority_service.segments.SegmentWorkerError` (an
            unexpected failure in a segment, or a worker process that died).
        """
        one_pass = partial(
            self.reconstructor.reconstruct_clip,
            source,
            destination,
            codec=codec,
            fallback_to_ffv1=fallback_to_ffv1,
            progress=progress,
            cancelled=cancelled,
            on_frame=on_frame,
        )
        self.results = []
        if self.workers <= 1:
            return one_pass()
        started = time.perf_counter()
        info, codec = prepare_clip(source, codec, fallback_to_ffv1)
        plan = plan_segments(source, self.segment_frames)
        self.plan_s = time.perf_counter() - started
        if plan is None or len(plan) < 2:
            return one_pass()
        specs = [
            SegmentSpec(
                index=k,
                source=source,
                part=destination.with_name(f"{destination.name}.seg{k:04d}"),
                start=start,
                pts=pts,
                seek_pts=seek,
                last=k == len(plan) - 1,
                info=info,
                codec=codec,
                record_faces=on_frame is not None,
            )
            for k, (start, pts, seek) in enumerate(plan)
        ]
        log.info(
            "clip %s: %d frames in %d segments, %d worker processes",
            source.name,
            len(plan[-1][1]) + plan[-1][0],
            len(specs),
            min(self.workers, len(specs)),
        )
        expected = expected_frames(info)
        try:
            self.results, carrier = self._reverse_all(specs, expected, progress, cancelled)
            joining = time.perf_counter()
            report = merge_segments(
                specs, self.results, destination, info, codec, carrier, on_frame
            )
            self.join_s = time.perf_counter() - joining
        except SegmentPlanError as exc:
            log.warning("clip %s: %s; reversing it in one pass", source.name, exc)
            destination.unlink(missing_ok=True)
            self.results = []
        except BaseException:
            destination.unlink(missing_ok=True)
            raise
        finally:
            for spec in specs:
                spec.part.unlink(missing_ok=True)
        if not self.results:
            return one_pass()
        if progress is not None:
            progress(report.frames, expected)
        report.seconds = time.perf_counter() - started
        return report

    def _reverse_all(
        self,
        specs: list[SegmentSpec],
        expected: int | None,
        progress: Callable[[int, int | None], None] | None,
        cancelled: Callable[[], bool] | None,
    ) -> tuple[list[SegmentResult], str | None]:
        """Every segment's result, in order, and the clip's carrier.

        Raises:
            The first failure in clip order; ReconstructionCancelledError.
        """
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        stop_at = context.Value("i", len(specs))  # segments from this index on stop
        self._done = dict.fromkeys(range(len(specs)), 0)
        created = time.time()
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(specs)),
            mp_context=context,
            initializer=_start_worker,
            initargs=(self.reconstructor, queue, stop_at, logging.getLogger().getEffectiveLevel()),
        )
        wait_for = partial(self._wait, pool, queue, stop_at, expected, progress, cancelled)
        try:
            outcomes = wait_for(specs)
            starts = [r.started_at for r in outcomes.values() if r is not None]
            self.startup_s = max(0.0, min(starts) - created) if starts else 0.0
            stop_at.value = len(specs)
            while isinstance(settled := settle(specs, outcomes), Rerun):
                spec = replace(specs[settled.index], carrier=settled.carrier)
                log.info("segment %d: reversed again, with carrier %s", spec.index, spec.carrier)
                result = wait_for([spec])[spec.index]
                assert result is not None  # cancelled only by cancelled(), which raised
                outcomes[spec.index] = result
            return settled
        finally:
            stop_at.value = 0  # any worker still at work stops at its next frame
            pool.shutdown(wait=True, cancel_futures=True)
            queue.close()
            queue.join_thread()

    def _wait(
        self,
        pool: ProcessPoolExecutor,
        queue: Any,
        stop_at: Any,
        expected: int | None,
        progress: Callable[[int, int | None], None] | None,
        cancelled: Callable[[], bool] | None,
        specs: list[SegmentSpec],
    ) -> dict[int, SegmentResult | None]:
        """Run ``specs`` and wait for all of them (``None``: stopped before it finished): a
        failing segment stops those after it; progress and ``cancelled()`` are polled.

        Raises:
            ReconstructionCancelledError: ``cancelled()`` returned true (workers stopped).
            SegmentWorkerError: a worker process died.
        """
        futures: dict[Future[SegmentResult], int] = {
            pool.submit(reverse_segment, spec): spec.index for spec in specs
        }
        outcomes: dict[int, SegmentResult | None] = {}
        pending = set(futures)
        stopping = False
        while pending:
            finished, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
            self._report_progress(queue, expected, progress)
            if not stopping and cancelled is not None and cancelled():
                stopping = True
                stop_at.value = 0
                for future in pending:
                    future.cancel()
            for future in finished:
                index = futures[future]
                result = outcomes[index] = self._outcome(future)
                if result is not None and result.failure is not None and index < stop_at.value:
                    stop_at.value = index + 1
                    for later in pending:
                        if futures[later] > index:
                            later.cancel()
        if stopping:
            raise ReconstructionCancelledError("reconstruction cancelled")
        return outcomes

    @staticmethod
    def _outcome(future: Future[SegmentResult]) -> SegmentResult | None:
        if future.cancelled():
            return None
        exc = future.exception()
        if exc is None:
            return future.result()
        if isinstance(exc, ReconstructionCancelledError):
            return None
        if isinstance(exc, BrokenProcessPool):
            raise SegmentWorkerError(
                "a segment worker process died (killed, or out of memory?)"
            ) from exc
        raise exc

    def _report_progress(
        self, queue: Any, expected: int | None, progress: Callable[[int, int | None], None] | None
    ) -> None:
        changed = False
        while True:
            try:
                segment, done = queue.get_nowait()
            except Empty:
                break
            if done > self._done[segment]:
                self._done[segment] = done
                changed = True
        if changed and progress is not None:
            progress(sum(self._done.values()), expected)


def reconstruct_clip(
    reconstructor: Reconstructor,
    source: Path,
    destination: Path,
    *,
    workers: int = 1,
    segment_frames: int = DEFAULT_SEGMENT_FRAMES,
    **options: Any,
) -> ClipReport:
    """Reverse ``source`` into ``destination`` with ``workers`` segment processes (1: one pass
    in this process); ``options`` are those of
    :meth:`~authority_service.reconstruction.Reconstructor.reconstruct_clip`.

    Raises:
        What :meth:`SegmentedReversal.run` raises.
    """
    reversal = SegmentedReversal(reconstructor, workers=workers, segment_frames=segment_frames)
    return reversal.run(source, destination, **options)
