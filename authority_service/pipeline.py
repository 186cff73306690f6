"""Overlap decoding, inference and encoding of a clip with two helper threads.

PyAV (FFmpeg) and ONNX Runtime release the GIL while they work, so decoding the next frames and
encoding the previous ones in their own threads runs them side by side with Ud on the caller's
thread. Both helpers use bounded queues (memory stays a few frames) and re-raise a failure of
their thread in the caller.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["BackgroundConsumer", "prefetch"]

T = TypeVar("T")
_END = object()
_POLL_S = 0.1


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put unless ``stop`` is set first; return whether the item was queued."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def prefetch(iterable: Iterable[T], depth: int = 4, name: str = "prefetch") -> Iterator[T]:
    """Iterate ``iterable`` in a background thread, up to ``depth`` items ahead.

    An exception raised by the iterable is re-raised here, after the items before it. Closing
    this generator early stops the thread and closes the iterable.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        iterator = iter(iterable)
        try:
            for item in iterator:
                if not _put(q, item, stop):
                    return
            _put(q, _END, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            _put(q, _Failure(exc), stop)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


class BackgroundConsumer(Generic[T]):
    """Feed items to ``consume`` in a background thread, in order, ``depth`` at most pending.

    :meth:`put` re-raises a failure of ``consume`` (and stops accepting items); :meth:`close`
    waits for the queue to drain and re-raises a failure too.
    """

    def __init__(self, consume: Callable[[T], None], depth: int = 4, name: str = "consumer"):
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            try:
                self._consume(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the producer's thread
                self._error = exc
                self._stop.set()
                return

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        """Queue ``item`` (blocks while ``depth`` items are pending).

        Raises:
            BaseException: whatever ``consume`` raised on an earlier item.
        """
        self._raise_if_failed()
        if not _put(self._queue, item, self._stop):
            self._raise_if_failed()

    def close(self) -> None:
        """Wait until every queued item is consumed.

        Raises:
            BaseException: whatever ``consume`` raised.
        """
        _put(self._queue, _END, self._stop)
        self._thread.join()
        self._raise_if_failed()

    def abandon(self) -> None:
        """Stop without consuming what is still queued (after an error elsewhere)."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(_END)
        self._thread.join()
