"""authority_service.pipeline: background decode/encode keep order and re-raise failures."""

from __future__ import annotations

import threading

import pytest

from authority_service.pipeline import BackgroundConsumer, prefetch


def test_prefetch_yields_in_order_then_reraises_after_the_items_before():
    def items():
        yield from range(5)
        raise ValueError("decoder broke at 5")

    seen = []
    with pytest.raises(ValueError, match="broke at 5"):
        for item in prefetch(items(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_prefetch_closed_early_stops_thread_and_closes_source():
    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    before = threading.active_count()
    gen = prefetch(endless(), depth=2)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    assert closed.wait(2) and threading.active_count() == before


def test_background_consumer_consumes_in_order_and_reraises():
    out = []
    consumer = BackgroundConsumer(out.append, depth=2)
    for i in range(10):
        consumer.put(i)
    consumer.close()
    assert out == list(range(10))

    def fail(item: int) -> None:
        if item == 3:
            raise OSError("disk full")

    failing = BackgroundConsumer(fail, depth=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            failing.put(i)
        failing.close()
