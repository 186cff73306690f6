"""Frame capture in its own thread: files, RTSP URLs and V4L2 devices through PyAV.

The capture thread never blocks on the consumer for a live source: a :class:`FrameQueue` of
bounded size drops its oldest frame when full and counts it. A file read as fast as possible
(``realtime=False``) is the exception: nothing is lost by waiting, so the thread waits.
A live source that fails or ends is reopened with exponential back-off; a file that ends ends
the stream. Frames are numbered in capture order (dropped ones included), and that number is
the frame index written into the ROI message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from edge_agent.stats import Stats

__all__ = [
    "CaptureThread",
    "CapturedFrame",
    "FrameQueue",
    "SourceError",
    "SourceInfo",
    "SourceSpec",
    "open_frames",
    "parse_source",
    "probe_source",
]

log = logging.getLogger(__name__)

SourceKind = Literal["file", "rtsp", "v4l2"]
_LIVE_SCHEMES = ("rtsp://", "rtsps://")


class SourceError(ValueError):
    """A source cannot be used: missing file, unknown scheme, not a video, no video stream."""


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source: its kind and what to hand to FFmpeg."""

    kind: SourceKind
    location: str

    @property
    def live(self) -> bool:
        return self.kind != "file"


@dataclass(frozen=True)
class SourceInfo:
    """Size and frame rate of an opened source."""

    width: int
    height: int
    fps: Fraction


@dataclass(frozen=True)
class CapturedFrame:
    """One captured frame: index in capture order, RGB pixels, capture time (monotonic s)."""

    index: int
    rgb: np.ndarray
    captured_at: float


def parse_source(url: str) -> SourceSpec:
    """Classify a source: ``rtsp://...``, ``/dev/videoN`` or ``v4l2:///dev/videoN``, or a file.

    Raises:
        SourceError: an empty string, an unsupported URL scheme, or a file that does not exist.
    """
    if not url:
        raise SourceError("no source given (--source or source.url)")
    if url.startswith(_LIVE_SCHEMES):
        return SourceSpec("rtsp", url)
    if url.startswith("v4l2://"):
        return SourceSpec("v4l2", url[len("v4l2://") :])
    if url.startswith("/dev/video"):
        return SourceSpec("v4l2", url)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise SourceError(
            f"unsupported source scheme {scheme!r}: use a file, rtsp:// or /dev/video"
        )
    path = Path(url)
    if not path.is_file():
        raise SourceError(f"source file not found: {path}")
    return SourceSpec("file", str(path))


def _open_container(
    spec: SourceSpec, rtsp_transport: str, open_timeout: float, read_timeout: float
) -> av.container.InputContainer:
    options: dict[str, str] = {}
    fmt = None
    if spec.kind == "rtsp":
        options = {"rtsp_transport": rtsp_transport}
    elif spec.kind == "v4l2":
        fmt = "v4l2"
    try:
        container = av.open(
            spec.location,
            mode="r",
            format=fmt,
            options=options,
            timeout=(open_timeout, read_timeout),
        )
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open source {spec.location}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"source {spec.location} has no video stream")
    return container


def _info(container: av.container.InputContainer, fps_override: float | None) -> SourceInfo:
    stream = container.streams.video[0]
    if fps_override:
        rate = Fraction(fps_override).limit_denominator(1001)
    else:
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
    return SourceInfo(stream.codec_context.width, stream.codec_context.height, rate)


def probe_source(
    spec: SourceSpec, *, fps: float | None = None, rtsp_transport: str = "tcp", timeout: float = 10
) -> SourceInfo:
    """Open a source once to read its size and frame rate.

    Raises:
        SourceError: it cannot be opened or has no video stream.
    """
    with _open_container(spec, rtsp_transport, timeout, timeout) as container:
        return _info(container, fps)


def open_frames(
    spec: SourceSpec,
    *,
    rtsp_transport: str = "tcp",
    open_timeout: float = 10.0,
    read_timeout: float = 10.0,
    realtime: bool = False,
    stop: threading.Event | None = None,
    fps: float | None = None,
    on_open: Callable[[SourceInfo], None] | None = None,
) -> Iterator[np.ndarray]:
    """Decode RGB frames from a source until it ends (``realtime``: paced at its frame rate).

    ``on_open`` receives the source's size and frame rate once it is open (``fps``
    overrides the frame rate the source reports).

    Raises:
        SourceError: it cannot be opened, or decoding fails part-way.
    """
    container = _open_container(spec, rtsp_transport, open_timeout, read_timeout)
    if on_open is not None:
        on_open(_info(container, fps))
    start_wall: float | None = None
    first_time: float | None = None
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if stop is not None and stop.is_set():
                return
            if realtime and frame.time is not None:
                now = time.monotonic()
                if start_wall is None or first_time is None:
                    start_wall, first_time = now, frame.time
                delay = start_wall + (frame.time - first_time) - now
                if delay > 0:
                    if stop is None:
                        time.sleep(delay)
                    elif stop.wait(delay):
                        return
            yield frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"source {spec.location} failed while decoding: {exc}") from exc
    finally:
        container.close()


class FrameQueue:
    """A bounded hand-over queue between the capture thread and the pipeline.

    ``put`` with ``block=False`` drops the oldest frame when full (and counts it);
    ``block=True`` waits for room (used for files read as fast as possible).
    """

    def __init__(self, maxsize: int, stats: Stats, stage: str = "capture") -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: deque[CapturedFrame] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._stats = stats
        self._stage = stage

    def put(
        self, item: CapturedFrame, *, block: bool = False, stop: threading.Event | None = None
    ) -> None:
        with self._cond:
            while block and len(self._items) >= self.maxsize and not self._closed:
                if stop is not None and stop.is_set():
                    return
                self._cond.wait(0.1)
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self._stats.dropped(self._stage)
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float) -> CapturedFrame | None:
        """The oldest frame, or ``None`` after ``timeout`` seconds or once closed and empty."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return None

    def close(self) -> None:
        """No more frames will come (the source ended)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        """Closed and drained."""
        with self._cond:
            return self._closed and not self._items


FrameOpener = Callable[[threading.Event], Iterator[np.ndarray]]


class CaptureThread(threading.Thread):
    """Reads a source into a :class:`FrameQueue`; reconnects a live source with back-off.

    Args:
        opener: returns a fresh frame iterator each time it is called (one connection).
        queue: where frames go.
        live: reconnect when the source ends or fails (else: end the stream).
        block: wait for room in the queue instead of dropping (files read as fast as possible).
        backoff: ``(initial, maximum)`` seconds between reconnection attempts.
    """

    def __init__(
        self,
        opener: FrameOpener,
        queue: FrameQueue,
        stats: Stats,
        *,
        live: bool,
        block: bool = False,
        backoff: tuple[float, float] = (0.5, 30.0),
        name: str = "capture",
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._opener = opener
        self._queue = queue
        self._stats = stats
        self._live = live
        self._block = block
        self._backoff = backoff
        self.stop_event = threading.Event()
        self.error: Exception | None = None
        self.connected = threading.Event()
        self._next_index = 0

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        delay = self._backoff[0]
        try:
            while not self.stop_event.is_set():
                got_frames = False
                try:
                    for rgb in self._opener(self.stop_event):
                        if self.stop_event.is_set():
                            break
                        if not got_frames:
                            got_frames = True
                            self.connected.set()
                            delay = self._backoff[0]
                            self._stats.set_gauge("source_connected", 1)
                        self._stats.count("frames_captured")
                        item = CapturedFrame(self._next_index, rgb, time.monotonic())
                        self._next_index += 1
                        self._queue.put(item, block=self._block, stop=self.stop_event)
                    if not self._live or self.stop_event.is_set():
                        return
                    log.warning("live source ended; reconnecting")
                except SourceError as exc:
                    if not self._live:
                        self.error = exc
                        log.error("%s", exc)
                        return
                    log.warning("source failed (%s); reconnecting in %.1f s", exc, delay)
                self.connected.clear()
                self._stats.set_gauge("source_connected", 0)
                self._stats.count("source_reconnects")
                if self.stop_event.wait(delay):
                    return
                delay = min(delay * 2.0, self._backoff[1])
        finally:
            self._queue.close()
