"""edge_agent.outputs.base: a slow output drops (counted) instead of stalling; a failing one is
retried; close() drains the queue."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np

from edge_agent.outputs.base import FrameSink, SinkError, StreamFormat, ThreadedSink
from edge_agent.pipeline import SealedFrame
from edge_agent.stats import Stats

FMT = StreamFormat(8, 8, Fraction(10))


def _frame(i):
    return SealedFrame(i, np.zeros((8, 8, 3), np.uint8), (), (), "")


class Recording(FrameSink):
    name = "rec"

    def __init__(self, delay=0.0, fail_writes=(), fail_opens=0):
        self.delay, self.fail_writes, self.fail_opens = delay, set(fail_writes), fail_opens
        self.written, self.opens, self.closes = [], 0, 0

    def open(self, fmt):
        self.opens += 1
        if self.opens <= self.fail_opens:
            raise SinkError("server down (injected)")

    def write(self, frame):
        time.sleep(self.delay)
        if frame.index in self.fail_writes:
            raise OSError("broken pipe (injected)")
        self.written.append(frame.index)

    def close(self):
        self.closes += 1


def test_put_never_blocks_and_a_slow_sink_drops_the_oldest():
    stats = Stats()
    sink = Recording(delay=0.05)
    threaded = ThreadedSink(sink, FMT, stats, queue_size=3)
    start = time.monotonic()
    for i in range(40):
        threaded.put(_frame(i))
    assert time.monotonic() - start < 0.05 * 5
    threaded.close()
    dropped = stats.get("frames_dropped", stage="sink:rec")
    assert dropped > 20
    assert len(sink.written) + dropped == 40
    assert sink.written == sorted(sink.written) and sink.written[-1] == 39  # newest kept
    assert sink.closes == 1


def test_failing_write_closes_reopens_after_backoff_and_counts():
    stats = Stats()
    sink = Recording(fail_writes={2})
    threaded = ThreadedSink(sink, FMT, stats, queue_size=100, retry=(0.05, 0.05))
    for i in range(5):
        threaded.put(_frame(i))
    time.sleep(0.2)
    for i in range(5, 8):
        threaded.put(_frame(i))
    threaded.close()
    assert stats.get("sink_errors", sink="rec") == 1
    assert sink.opens == 2 and sink.closes == 2
    assert sink.written[:2] == [0, 1] and sink.written[-3:] == [5, 6, 7]
    dropped = stats.get("frames_dropped", stage="sink:rec")
    assert len(sink.written) + dropped == 8


def test_sink_that_cannot_open_drops_frames_until_it_can():
    stats = Stats()
    sink = Recording(fail_opens=1)
    threaded = ThreadedSink(sink, FMT, stats, queue_size=100, retry=(0.05, 0.05))
    threaded.put(_frame(0))
    deadline = time.monotonic() + 10
    while stats.get("sink_errors", sink="rec") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # past the retry delay
    threaded.put(_frame(1))
    threaded.close()
    assert sink.written == [1]
    assert stats.get("frames_dropped", stage="sink:rec") == 1
    assert stats.get("sink_errors", sink="rec") == 1
