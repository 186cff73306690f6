"""A clip in segments: planned from its packets, each reversed on its own, joined into one file.

:mod:`authority_service.parallel` runs these pieces in worker processes; each piece is plain
data and plain functions, which the job queue's workers on other machines run too
(:mod:`authority_service.segment_tasks`).

* **Plan** (:func:`plan_segments`): the clip's packets are demuxed, not decoded, for their
  presentation timestamps and keyframe flags. Segments are fixed ranges of ``segment_frames``
  frames (a multiple of 16), each decoded from the nearest keyframe at or before its first frame,
  the frames before that (the preroll) decoded and dropped. Not cut at keyframes, because
  ``Ud`` batches faces in windows that never cross a multiple of 16 frames
  (:meth:`~authority_service.reconstruction.Reconstructor.reverse_frames`): a segment that
  starts on such a multiple batches its faces as one pass does, whatever ``Ud``'s output does
  with the batch (ONNX Runtime's need not be bit-identical from one batch to another), while a
  keyframe falls on one only by chance (libx264rgb puts one every 250 frames, the edge's lossy
  stream every 2 s); a clip with few keyframes would also stay in one piece. The price is the
  preroll: none in FFV1 evidence (every frame a keyframe), at most a GOP per segment otherwise.
* **Unit of work** (:func:`reverse_segment`): a :class:`SegmentSpec` (paths, frame range, the
  timestamps its frames must have, codec, message carrier) in, a :class:`SegmentResult` (its
  report, the carrier it read, its faces for ``on_frame``, or the error that stopped it) out.
  The process's :class:`~authority_service.reconstruction.Reconstructor` (its decoders, keys and
  message sources) is given once per process (:func:`init_worker`), never with a task.
* **Frame identity**: every decoded frame's timestamp is checked against the plan. A segment
  whose frames do not line up (a decoder that drops or adds frames, a seek that lands wrong)
  fails with :class:`SegmentPlanError`; the clip is then reversed in one pass instead.
* **Join** (:func:`join_segments`): the segments' encoded packets are copied into one file
  (no re-encoding), re-stamped with their frame numbers as one pass's encoder stamps them, so
  the joined file decodes to the frames, and timestamps, of a one-pass result.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from authority_service.clip_checks import CONTAINER, ResultCodec
from authority_service.clip_report import ClipReport
from authority_service.errors import ClipError
from authority_service.messages import ClipMessages
from authority_service.reconstruction import ReconstructionCancelledError, Reconstructor
from authority_service.sealed import FrameFaces
from shared.geometry import Box
from shared.private_files import PRIVATE_FILE_MODE, create_private_file
from shared.sei import payloads_from_frame
from shared.video_io import VideoDecodeError, VideoFrame, VideoInfo

__all__ = [
    "NO_PIXELS",
    "SEGMENT_ALIGNMENT",
    "FrameRecord",
    "SegmentPlanError",
    "SegmentResult",
    "SegmentSpec",
    "SegmentWorkerError",
    "init_worker",
    "join_segments",
    "plan_segments",
    "read_segment",
    "reverse_segment",
]

log = logging.getLogger(__name__)

#: Segments start at multiples of this (the frames of a ``Ud`` window).
SEGMENT_ALIGNMENT = 16
#: What ``on_frame`` is called with, per frame: index, boxes (``None``: no message), faces (the
#: pixels of the exact ones dropped: only which boxes opened, and how, travel back).
FrameRecord = tuple[int, tuple[Box, ...] | None, FrameFaces]
#: What a record's exact faces hold instead of their pixels.
NO_PIXELS = np.zeros((0, 0, 3), np.uint8)


class SegmentPlanError(Exception):
    """A segment's decoded frames do not line up with the plan (reverse the clip in one pass)."""


class SegmentWorkerError(RuntimeError):
    """An unexpected failure inside a segment (its type and message; the worker logged the
    traceback)."""


@dataclass(frozen=True)
class SegmentSpec:
    """One segment to reverse: frames ``start`` .. ``start + len(pts) - 1`` of ``source`` into
    the lossless file ``part``.

    Attributes:
        pts: the presentation timestamp (stream time base) each of its frames must have.
        seek_pts: the keyframe to start decoding at (``None``: the start of the file).
        last: the clip's last segment, which reads to the end of the file (it may hold fewer
            frames than planned: a truncated clip, which the joined report then says).
        info / codec: the clip (size, frame rate) and the result's codec.
        carrier: the message carrier (a source's name) to read; ``None``: chosen on the
            segment's first frame that carries a message.
        record_faces: return every frame's boxes for ``on_frame``.
    """

    index: int
    source: Path
    part: Path
    start: int
    pts: tuple[int, ...]
    seek_pts: int | None
    last: bool
    info: VideoInfo
    codec: ResultCodec
    carrier: str | None = None
    record_faces: bool = False


@dataclass
class SegmentResult:
    """What a segment did: its report (counts of its frames only), the carrier its messages
    were read from (``None``: none carried one), its frames' records for ``on_frame``, and the
    error that stopped it (:class:`~authority_service.errors.ClipError`,
    :class:`SegmentPlanError` or :class:`SegmentWorkerError`; ``None``: it succeeded); its
    time, and when it started (``time.time()``)."""

    index: int
    report: ClipReport
    carrier: str | None
    frames: list[FrameRecord] = field(default_factory=list)
    failure: Exception | None = None
    seconds: float = 0.0
    started_at: float = 0.0


def plan_segments(
    source: Path, segment_frames: int
) -> list[tuple[int, tuple[int, ...], int | None]] | None:
    """``(start, pts, seek_pts)`` of each segment of ``source`` (see the module docstring), or
    ``None`` when the clip cannot be split: its packets cannot be read, lack timestamps or
    repeat one, or it holds at most ``segment_frames`` frames.

    Raises:
        ValueError: ``segment_frames`` is not a positive multiple of 16.
    """
    if segment_frames < 1 or segment_frames % SEGMENT_ALIGNMENT:
        raise ValueError(f"segment_frames must be a multiple of {SEGMENT_ALIGNMENT}")
    try:
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
    except (av.FFmpegError, OSError, IndexError) as exc:
        log.info("clip %s: packets unreadable (%s); one pass", source.name, exc)
        return None
    if any(pts is None for pts, _ in packets):
        return None
    pts = sorted(p for p, _ in packets)
    if len(set(pts)) != len(pts) or len(pts) <= segment_frames:
        return None
    keyframes = sorted(p for p, key in packets if key)
    starts: list[tuple[int, int | None]] = [(0, None)]
    for start in range(segment_frames, len(pts), segment_frames):
        at = bisect.bisect_right(keyframes, pts[start]) - 1
        if at >= 0:  # otherwise no keyframe to start from: the previous segment goes on
            starts.append((start, keyframes[at]))
    ends = [start for start, _ in starts[1:]] + [len(pts)]
    return [
        (start, tuple(pts[start:end]), seek)
        for (start, seek), end in zip(starts, ends, strict=True)
    ]


def read_segment(spec: SegmentSpec) -> Iterator[VideoFrame]:
    """Decode the segment's frames (as :func:`shared.video_io.read_frames` does, numbered from
    ``spec.start``), from its keyframe, dropping the preroll.

    Raises:
        SegmentPlanError: a frame's timestamp is not the planned one, the preroll does not
            decode, or a segment other than the last ends early.
        VideoDecodeError: decoding fails within the segment (the index reached is named).
    """
    try:
        container = av.open(str(spec.source))
    except (av.FFmpegError, OSError) as exc:
        raise VideoDecodeError(f"{spec.source}: not a readable video: {exc}") from exc
    done = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if spec.seek_pts is not None:
            container.seek(spec.seek_pts, stream=stream, backward=True)
        for frame in container.decode(stream):
            if done == 0 and frame.pts is not None and frame.pts < spec.pts[0]:
                continue  # the preroll: a frame of the previous segment
            if done >= len(spec.pts) or frame.pts != spec.pts[done]:
                raise SegmentPlanError(
                    f"segment {spec.index}: frame {spec.start + done} has pts {frame.pts}, "
                    "not the one its packets promised"
                )
            sei = tuple(payloads_from_frame(frame))
            yield VideoFrame(spec.start + done, frame.to_ndarray(format="rgb24"), frame.time, sei)
            done += 1
            if done == len(spec.pts) and not spec.last:
                return
    except av.FFmpegError as exc:
        if done == 0 and spec.start > 0:
            raise SegmentPlanError(f"segment {spec.index}: its preroll fails: {exc}") from exc
        raise VideoDecodeError(
            f"{spec.source}: decoding failed at frame {spec.start + done}: {exc}"
        ) from exc
    finally:
        container.close()
    if done < len(spec.pts) and not spec.last:
        raise SegmentPlanError(
            f"segment {spec.index}: {done} of its {len(spec.pts)} frames decoded"
        )


@dataclass
class _Worker:
    reconstructor: Reconstructor
    progress: Callable[[int, int], None] | None
    stop: Callable[[int], bool] | None


_worker: _Worker | None = None


def init_worker(
    reconstructor: Reconstructor,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[int], bool] | None = None,
) -> None:
    """Give this process what :func:`reverse_segment` works with: the reconstructor,
    ``progress(segment, frames_done)`` and ``stop(segment)`` (polled per frame: true stops it).
    """
    global _worker
    _worker = _Worker(reconstructor, progress, stop)


def _record(frames: list[FrameRecord]) -> Callable[[int, Sequence[Box] | None, FrameFaces], None]:
    def on_frame(index: int, boxes: Sequence[Box] | None, faces: FrameFaces) -> None:
        exact = dict.fromkeys(faces.exact, NO_PIXELS)
        frames.append(
            (
                index,
                None if boxes is None else tuple(boxes),
                dataclasses.replace(faces, exact=exact),
            )
        )

    return on_frame


def reverse_segment(spec: SegmentSpec) -> SegmentResult:
    """Reverse one segment into ``spec.part`` with this process's reconstructor
    (:func:`init_worker`). What stops it is returned in the result's ``failure`` (with the
    carrier it had chosen by then, which decides whether the failure stands), and its part
    removed.

    Raises:
        ReconstructionCancelledError: ``stop`` said so (the part is removed).
        RuntimeError: :func:`init_worker` was not called in this process.
    """
    worker = _worker
    if worker is None:
        raise RuntimeError("init_worker() was not called in this process")
    started_at, started = time.time(), time.perf_counter()
    messages = ClipMessages(worker.reconstructor.sources, carrier=spec.carrier)
    report = ClipReport()
    frames: list[FrameRecord] = []
    progress, stop = worker.progress, worker.stop
    failure: Exception | None = None
    try:
        worker.reconstructor.reverse_frames(
            read_segment(spec),
            spec.part,
            spec.info,
            spec.codec,
            messages,
            report,
            first_index=spec.start,
            progress=None if progress is None else lambda done, _: progress(spec.index, done),
            cancelled=None if stop is None else lambda: stop(spec.index),
            on_frame=_record(frames) if spec.record_faces else None,
        )
    except ReconstructionCancelledError:
        raise
    except (ClipError, SegmentPlanError) as exc:
        failure = exc
    except Exception as exc:  # returned as a plain error that pickles
        log.exception("segment %d (frames from %d) failed", spec.index, spec.start)
        failure = SegmentWorkerError(f"segment {spec.index}: {type(exc).__name__}: {exc}")
    return SegmentResult(
        spec.index,
        report,
        messages.chosen.name if messages.chosen else None,
        frames,
        failure,
        time.perf_counter() - started,
        started_at,
    )


def _restamp(packet: av.Packet, rate: Fraction, first: int) -> None:
    """Give ``packet`` (of a segment starting at frame ``first``) the clip's frame numbers, in
    the time base one pass's encoder stamps them in (``1 / rate``)."""
    base = packet.time_base

    def frame_of(value: int | None) -> int | None:
        return None if value is None else round(value * base * rate)

    pts, dts, duration = frame_of(packet.pts), frame_of(packet.dts), frame_of(packet.duration)
    packet.time_base = 1 / rate
    packet.pts = None if pts is None else pts + first
    packet.dts = None if dts is None else dts + first
    if duration:
        packet.duration = duration


def join_segments(
    parts: Sequence[tuple[Path, int]], destination: Path, codec: ResultCodec, fps: Fraction
) -> None:
    """Copy the encoded packets of ``parts`` (each a segment's file and its first frame's
    index, in order) into ``destination`` (created 0600) without re-encoding.

    Raises:
        ValueError: the parts were encoded with different codec parameters.
        OSError / av.FFmpegError: a part cannot be read or ``destination`` written.
    """
    rate = Fraction(fps).limit_denominator(1001)  # as shared.video_io.LosslessWriter
    create_private_file(destination, PRIVATE_FILE_MODE)
    with av.open(str(destination), mode="w", format=CONTAINER[codec]) as out:
        stream = None
        extradata = None
        for part, first in parts:
            with av.open(str(part)) as container:
                source = container.streams.video[0]
                if stream is None:
                    stream = out.add_stream_from_template(source)
                    extradata = source.codec_context.extradata
                elif source.codec_context.extradata != extradata:
                    raise ValueError(f"{part.name} was encoded with other codec parameters")
                for packet in container.demux(source):
                    if not packet.size:
                        continue
                    _restamp(packet, rate, first)
                    packet.stream = stream
                    out.mux(packet)
