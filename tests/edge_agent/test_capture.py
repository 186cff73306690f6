"""edge_agent.capture: the bounded queue drops the oldest (counted); the thread reconnects."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from edge_agent.capture import CaptureThread, FrameQueue
from edge_agent.sources import CapturedFrame, SourceError, SourceSpec, source_answers
from edge_agent.stats import Stats


def _item(i):
    return CapturedFrame(i, np.zeros((2, 2, 3), np.uint8), 0.0)


def test_queue_full_drops_oldest_and_counts():
    stats = Stats()
    queue = FrameQueue(3, stats)
    for i in range(5):
        queue.put(_item(i))
    assert [queue.get(0.01).index for _ in range(3)] == [2, 3, 4]
    assert queue.get(0.01) is None
    assert stats.get("frames_dropped", stage="capture") == 2


def test_queue_blocking_put_waits_for_room():
    stats = Stats()
    queue = FrameQueue(1, stats)
    queue.put(_item(0), block=True)
    threading.Timer(0.1, lambda: queue.get(0.01)).start()
    queue.put(_item(1), block=True)
    assert queue.get(0.5).index == 1
    assert stats.get("frames_dropped", stage="capture") == 0


def test_queue_close_finishes_after_draining():
    queue = FrameQueue(2, Stats())
    queue.put(_item(0))
    queue.close()
    assert not queue.finished
    assert queue.get(0.01).index == 0
    assert queue.finished and queue.get(0.01) is None


def test_capture_thread_reconnects_with_backoff_and_numbers_frames_on():
    stats = Stats()
    queue = FrameQueue(100, stats)
    calls = []

    def opener(stop):
        calls.append(1)
        if len(calls) == 2:
            raise SourceError("refused (injected)")
        if len(calls) > 3:
            stop.wait(5)
            return iter(())
        return iter([np.zeros((2, 2, 3), np.uint8)] * 3)

    thread = CaptureThread(opener, queue, stats, live=True, backoff=(0.01, 0.02))
    thread.start()
    got = [queue.get(2.0) for _ in range(6)]
    thread.stop()
    thread.join(2)
    assert [g.index for g in got] == list(range(6))
    assert stats.get("source_reconnects") == 3
    assert not thread.is_alive()


def test_capture_thread_on_file_error_records_it_and_ends():
    queue = FrameQueue(4, Stats())

    def opener(stop):
        raise SourceError("not a video (injected)")

    thread = CaptureThread(opener, queue, Stats(), live=False)
    thread.start()
    thread.join(2)
    assert isinstance(thread.error, SourceError) and queue.finished


def test_queue_refuses_zero_size():
    with pytest.raises(ValueError):
        FrameQueue(0, Stats())


def test_capture_thread_reconnects_as_soon_as_the_source_answers_again():
    """A long back-off wait is cut short once the camera's port answers again (here a real
    TCP listener stands for the camera), and the back-off starts again from the beginning."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    camera = socket.socket()
    camera.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    up = threading.Event()

    def opener(stop):
        if not up.is_set():
            raise SourceError("connection refused (camera down)")
        return iter([np.zeros((2, 2, 3), np.uint8)])

    stats = Stats()
    queue = FrameQueue(10, stats)
    thread = CaptureThread(
        opener,
        queue,
        stats,
        live=True,
        backoff=(0.4, 30.0),
        answers=source_answers(SourceSpec("rtsp", f"rtsp://127.0.0.1:{port}/cam")),
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while stats.get("source_reconnects") < 4 and time.monotonic() < deadline:
            time.sleep(0.02)  # failed at 0, 0.4, 1.2, 2.8 s: the next wait is 3.2 s
        time.sleep(0.3)
        camera.bind(("127.0.0.1", port))
        camera.listen()
        up.set()
        back = time.monotonic()
        item = queue.get(10.0)
        waited = time.monotonic() - back
    finally:
        thread.stop()
        thread.join(5)
        camera.close()
    assert item is not None and item.index == 0
    assert waited < 1.5, f"reconnected {waited:.1f} s after the camera came back"
