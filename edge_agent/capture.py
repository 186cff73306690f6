"""Frame capture in its own thread: files, RTSP URLs and V4L2 devices through PyAV.

The capture thread never blocks on the consumer for a live source: a :class:`FrameQueue` of
bounded size drops its oldest frame when full and counts it. A file read as fast as possible
(``realtime=False``) is the exception: nothing is lost by waiting, so the thread waits.
A live source that fails or ends is reopened with exponential back-off; while it waits, the
thread checks whether the source answers again (a TCP connection to an RTSP camera, the device
node of a V4L2 one) and then reconnects at once, with the back-off reset. With
``give_up_after_s`` (``source.exit_on_failure``) a live source that never opened within that time
ends the stream with an error instead. A file that ends ends the stream; one that ends early
(fewer frames decoded than its container declares, or a decoding error) ends it with a
:class:`SourceIncompleteError`, logged as a WARNING and counted
(``source_incomplete{reason}``). Frames are numbered in capture order (dropped ones included),
and that number is the frame index written into the ROI message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np

from edge_agent.sources import (
    CapturedFrame,
    SourceError,
    SourceIncompleteError,
)
from edge_agent.stats import Stats

__all__ = ["CaptureThread", "FrameQueue"]

log = logging.getLogger(__name__)


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


_ANSWER_POLL_S = 0.5


class CaptureThread(threading.Thread):
    """Reads a source into a :class:`FrameQueue`; reconnects a live source with back-off.

    Args:
        opener: returns a fresh frame iterator each time it is called (one connection).
        queue: where frames go.
        live: reconnect when the source ends or fails (else: end the stream).
        block: wait for room in the queue instead of dropping (files read as fast as possible).
        backoff: ``(initial, maximum)`` seconds between reconnection attempts.
        answers: polled during a back-off wait (:func:`source_answers`); when the source answers
            after having not, the wait ends and the back-off starts again from ``initial``.
        give_up_after_s: a live source that has not delivered a frame this many seconds after
            the start ends the stream with :attr:`error` set (``None``: retry for ever).
        location: the source, for messages.
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
        answers: Callable[[], bool] | None = None,
        give_up_after_s: float | None = None,
        location: str = "the source",
        name: str = "capture",
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._opener = opener
        self._queue = queue
        self._stats = stats
        self._live = live
        self._block = block
        self._backoff = backoff
        self._answers = answers
        self._give_up_after_s = give_up_after_s
        self._location = location
        self.stop_event = threading.Event()
        self.error: Exception | None = None
        self.connected = threading.Event()
        self._next_index = 0

    def stop(self) -> None:
        self.stop_event.set()

    def _wait_to_retry(self, delay: float) -> str:
        """Sleep ``delay`` seconds before the next attempt: ``"stop"`` (asked to stop),
        ``"answers"`` (the source did not answer, then did: cut short) or ``"waited"``. A
        source that answers all along (its port is open, its stream fails) waits the delay."""
        if self._answers is None or delay <= 0:
            return "stop" if self.stop_event.wait(delay) else "waited"
        deadline = time.monotonic() + delay
        was_down = not self._answers()
        while (remaining := deadline - time.monotonic()) > 0:
            if self.stop_event.wait(min(remaining, _ANSWER_POLL_S)):
                return "stop"
            if not self._answers():
                was_down = True
            elif was_down:
                log.info("%s answers again; reconnecting now", self._location)
                return "answers"
        return "waited"

    def _give_up(self, started: float, cause: Exception | None) -> bool:
        """Whether to stop retrying: ``give_up_after_s`` is set, no frame ever came and that
        much time has passed since the start (then :attr:`error` says why)."""
        limit = self._give_up_after_s
        if limit is None or self._next_index or time.monotonic() - started < limit:
            return False
        why = f" ({cause})" if cause is not None else ""
        self.error = SourceError(
            f"{self._location} did not open within {limit:g} s{why}; giving up "
            "(source.exit_on_failure)"
        )
        log.error("%s", self.error)
        return True

    def _retry_delay(self, delay: float, started: float) -> float:
        """The back-off ``delay``, cut to the time left before :meth:`_give_up` gives up."""
        if self._give_up_after_s is None or self._next_index:
            return delay
        return max(0.0, min(delay, started + self._give_up_after_s - time.monotonic()))

    def run(self) -> None:
        delay = self._backoff[0]
        started = time.monotonic()
        try:
            while not self.stop_event.is_set():
                got_frames = False
                cause: Exception | None = None
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
                except SourceIncompleteError as exc:
                    self.error = exc
                    log.warning("%s", exc)
                    self._stats.count("source_incomplete", reason=exc.reason)
                    return
                except SourceError as exc:
                    if not self._live:
                        self.error = exc
                        log.error("%s", exc)
                        return
                    cause = exc
                    log.warning("source failed (%s); reconnecting in %.1f s", exc, delay)
                self.connected.clear()
                self._stats.set_gauge("source_connected", 0)
                if self._give_up(started, cause):
                    return
                self._stats.count("source_reconnects")
                outcome = self._wait_to_retry(self._retry_delay(delay, started))
                if outcome == "stop":
                    return
                if outcome == "answers":  # back after an outage: start the back-off again
                    delay = self._backoff[0]
                else:
                    delay = min(delay * 2.0, self._backoff[1])
        finally:
            self._queue.close()
