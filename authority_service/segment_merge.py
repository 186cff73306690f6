"""What a clip's segments decide together, as one pass decides it over the whole clip: the
message carrier, which failure stands, and the joined file and report. One implementation for
both ways of running segments: a local process pool (:mod:`authority_service.parallel`) and the
workers of the job queue (:mod:`authority_service.segment_tasks`).

* :func:`settle` walks the segments' outcomes in clip order. The clip's carrier is the first
  segment's that chose one; a segment that chose another one, or that was stopped before it
  finished (because an earlier one failed), must be reversed again (:class:`Rerun`) with the
  clip's carrier; the first failure met in that order is raised (one pass stops there).
* :func:`merge_segments` joins the segments' files into the result
  (:func:`~authority_service.segments.join_segments`), their reports into one
  (:meth:`~authority_service.clip_report.ClipReport.merge`), calls ``on_frame`` for every frame
  in order, and makes the checks one pass makes at its end
  (:func:`~authority_service.clip_checks.finish_clip`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from authority_service.clip_checks import ResultCodec, finish_clip
from authority_service.clip_report import ClipReport
from authority_service.reconstruction import OnFrame
from authority_service.segments import SegmentResult, SegmentSpec, join_segments
from shared.video_io import VideoInfo

__all__ = ["Rerun", "merge_segments", "settle"]


@dataclass(frozen=True)
class Rerun:
    """Segment ``index`` is to be reversed again, reading its messages from ``carrier``
    (``None``: chosen on its own first frame carrying one, as no earlier segment chose)."""

    index: int
    carrier: str | None


def settle(
    specs: Sequence[SegmentSpec], outcomes: Mapping[int, SegmentResult | None]
) -> tuple[list[SegmentResult], str | None] | Rerun:
    """Every segment's result in clip order and the clip's carrier, or the first segment to
    reverse again (``outcomes``: each segment's result by index; ``None`` or missing: stopped
    before it finished).

    Raises:
        Exception: the failure of the first segment, in clip order, whose failure stands (its
            carrier is the clip's): a :class:`~authority_service.errors.ClipError`,
            :class:`~authority_service.segments.SegmentPlanError` or
            :class:`~authority_service.segments.SegmentWorkerError`.
    """
    ordered: list[SegmentResult] = []
    carrier: str | None = None
    for spec in specs:
        result = outcomes.get(spec.index)
        if result is None or (carrier is not None and result.carrier not in (None, carrier)):
            return Rerun(spec.index, carrier)
        if result.failure is not None:
            raise result.failure
        carrier = carrier or result.carrier
        ordered.append(result)
    return ordered, carrier


def merge_segments(
    specs: Sequence[SegmentSpec],
    results: Sequence[SegmentResult],
    destination: Path,
    info: VideoInfo,
    codec: ResultCodec,
    carrier: str | None,
    on_frame: OnFrame | None = None,
) -> ClipReport:
    """Join the settled ``results`` (of ``specs``, in order; each segment's file at its
    ``part``) into ``destination`` and return the clip's report, as one pass over the clip
    reports it (bar ``seconds``). On any error ``destination`` is removed; the parts are the
    caller's to remove.

    Raises:
        CorruptVideoError / NoMessageError: as :func:`~authority_service.clip_checks.finish_clip`.
        ValueError / OSError / av.FFmpegError: as
            :func:`~authority_service.segments.join_segments`; what ``on_frame`` raises.
    """
    by_index = {spec.index: spec for spec in specs}
    try:
        join_segments(
            [(by_index[r.index].part, by_index[r.index].start) for r in results if r.report.frames],
            destination,
            codec,
            info.fps,
        )
        report = ClipReport.for_clip(info, codec)
        for result in results:
            report.merge(result.report)
        if on_frame is not None:
            for result in results:
                for index, boxes, faces in result.frames:
                    on_frame(index, boxes, faces)
        finish_clip(report, info, destination, carrier)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    return report
