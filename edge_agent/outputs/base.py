"""The output interface and the thread + bounded queue every output runs behind."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

from edge_agent.pipeline import SealedFrame
from edge_agent.stats import Stats
from shared.video_io import LosslessWriter

__all__ = ["FrameSink", "LosslessStreamSink", "SinkError", "StreamFormat", "ThreadedSink"]

log = logging.getLogger(__name__)


class SinkError(RuntimeError):
    """An output could not be opened or written."""


@dataclass(frozen=True)
class StreamFormat:
    """Size and frame rate of the public stream."""

    width: int
    height: int
    fps: Fraction


class FrameSink(ABC):
    """An output of sealed frames. ``open`` before the first ``write``; ``close`` at the end.

    Implementations raise :class:`SinkError` (or the codec's own errors) when they fail; the
    :class:`ThreadedSink` around them counts, logs, and reopens them.
    """

    name: str = "sink"

    @abstractmethod
    def open(self, fmt: StreamFormat) -> None:
        """Start the output (create the file, connect to the server)."""

    @abstractmethod
    def write(self, frame: SealedFrame) -> None:
        """Encode one sealed frame."""

    @abstractmethod
    def close(self) -> None:
        """Flush and finish the output (idempotent)."""


class LosslessStreamSink(FrameSink):
    """An output that writes every frame to one :class:`~shared.video_io.LosslessWriter` (a
    stream: RTSP, HLS), presentation times counted from the first frame written since
    :meth:`open` (so a reopened output starts at 0 again)."""

    def __init__(self) -> None:
        self._writer: LosslessWriter | None = None
        self._first_index: int | None = None

    @abstractmethod
    def _start(self, fmt: StreamFormat) -> LosslessWriter:
        """Create the writer.

        Raises:
            SinkError: it cannot be created (the message names the target).
        """

    def open(self, fmt: StreamFormat) -> None:
        self._writer = self._start(fmt)
        self._first_index = None

    def write(self, frame: SealedFrame) -> None:
        if self._writer is None:
            raise SinkError(f"{self.name} output written before open()")
        if self._first_index is None:
            self._first_index = frame.index
        self._writer.write(frame.rgb, pts=frame.index - self._first_index)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


class ThreadedSink:
    """Run a :class:`FrameSink` in its own thread behind a bounded, drop-oldest queue.

    A failing sink is closed, counted (``sink_errors{sink}``) and reopened after a back-off
    (``retry``); frames arriving meanwhile are dropped and counted.
    """

    def __init__(
        self,
        sink: FrameSink,
        fmt: StreamFormat,
        stats: Stats,
        *,
        queue_size: int = 16,
        retry: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        self.sink = sink
        self.fmt = fmt
        self.stats = stats
        self.queue_size = queue_size
        self.retry = retry
        self._items: deque[SealedFrame] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._opened = False
        self._thread = threading.Thread(target=self._run, name=f"sink-{sink.name}", daemon=True)
        self._thread.start()

    @property
    def stage(self) -> str:
        return f"sink:{self.sink.name}"

    def put(self, frame: SealedFrame) -> None:
        """Queue a frame for the output; drops (and counts) the oldest when full. Never blocks."""
        with self._cond:
            if self._closing:
                return
            if len(self._items) >= self.queue_size:
                self._items.popleft()
                self.stats.dropped(self.stage)
            self._items.append(frame)
            self._cond.notify_all()

    def _next(self) -> SealedFrame | None:
        with self._cond:
            while not self._items and not self._closing:
                self._cond.wait(0.5)
            return self._items.popleft() if self._items else None

    def _run(self) -> None:
        delay = self.retry[0]
        retry_at = 0.0
        while True:
            frame = self._next()
            if frame is None:
                break
            if not self._opened:
                if time.monotonic() < retry_at:
                    self.stats.dropped(self.stage)
                    continue
                try:
                    self.sink.open(self.fmt)
                    self._opened = True
                    self.stats.set_gauge(f"sink_up_{self.sink.name}", 1)
                except Exception as exc:  # noqa: BLE001
                    self._failed("open", exc, delay)
                    retry_at = time.monotonic() + delay
                    delay = min(delay * 2, self.retry[1])
                    self.stats.dropped(self.stage)
                    continue
            start = time.perf_counter()
            try:
                self.sink.write(frame)
                delay = self.retry[0]
            except Exception as exc:  # noqa: BLE001
                self._failed("write", exc, delay)
                self._close_quietly()
                retry_at = time.monotonic() + delay
                delay = min(delay * 2, self.retry[1])
                self.stats.dropped(self.stage)
                continue
            self.stats.observe(f"encode:{self.sink.name}", time.perf_counter() - start)
            self.stats.count("sink_frames_written", sink=self.sink.name)
        self._close_quietly()

    def _failed(self, what: str, exc: Exception, delay: float) -> None:
        self.stats.count("sink_errors", sink=self.sink.name)
        self.stats.set_gauge(f"sink_up_{self.sink.name}", 0)
        log.error("output %s: %s failed (%s); retrying in %.1f s", self.sink.name, what, exc, delay)

    def _close_quietly(self) -> None:
        if not self._opened:
            return
        self._opened = False
        try:
            self.sink.close()
        except Exception as exc:  # noqa: BLE001
            log.warning("output %s: close failed: %s", self.sink.name, exc)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then close the output (waits up to ``timeout`` s)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("output %s did not finish within %.0f s", self.sink.name, timeout)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._items)
