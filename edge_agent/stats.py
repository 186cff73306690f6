"""Counters, gauges and stage latencies of one agent, readable in tests and by Prometheus.

One :class:`Stats` object is shared by every thread (a lock guards it). ``snapshot()`` gives a
plain dict (the CLI prints it at exit; tests assert on it); :class:`StatsCollector` exposes the
same numbers to ``prometheus_client`` at scrape time, so there is a single bookkeeping.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

__all__ = ["LATENCY_BUCKETS", "Stats", "StatsCollector"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

COUNTER_HELP = {
    "frames_captured": "Frames decoded from the source",
    "frames_processed": "Frames that went through the pipeline",
    "frames_emitted": "Sealed frames handed to the outputs",
    "faces_detected": "Faces found by the detector",
    "faces_deidentified": "Head ROIs replaced by Ue output",
    "faces_held": "Head ROIs covered by a held track (detector missed the face)",
    "faces_sealed": "Replaced faces whose original pixels were sealed to the authority's keys",
    "faces_unsealed": "Replaced faces left Ud-only (reason: capacity, error, sei_error)",
    "sealed_bytes": "Bytes of sealed-faces payloads written into ROI messages",
    "source_reconnects": "Times the source was lost and reopened",
}


class Stats:
    """Thread-safe counters (with optional labels), gauges and latency histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, float] = defaultdict(float)
        self._labelled: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self._gauges: dict[str, float] = {}
        self._latency: dict[str, list[float]] = {}
        self._latency_sum: dict[str, float] = defaultdict(float)
        self._latency_count: dict[str, int] = defaultdict(int)
        self._emitted_times: deque[float] = deque(maxlen=64)
        self.started_at = time.monotonic()
        self.last_frame_at: float | None = None

    def count(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add ``amount`` to a counter (labelled when ``labels`` are given)."""
        with self._lock:
            if labels:
                self._labelled[name][tuple(sorted(labels.items()))] += amount
            else:
                self._counters[name] += amount

    def dropped(self, stage: str, amount: int = 1) -> None:
        """Count frames dropped at ``stage`` (``capture``, ``failure``, ``sink:<name>``)."""
        self.count("frames_dropped", amount, stage=stage)

    def fail_closed(self, stage: str, action: str) -> None:
        """Count a frame handled fail-closed: ``stage`` failed, ``action`` was taken."""
        self.count("fail_closed", 1, stage=stage, action=action)

    def set_gauge(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = value

    def observe(self, stage: str, seconds: float) -> None:
        """Record one latency of ``stage`` (seconds)."""
        with self._lock:
            buckets = self._latency.setdefault(stage, [0.0] * (len(LATENCY_BUCKETS) + 1))
            buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum[stage] += seconds
            self._latency_count[stage] += 1

    def frame_emitted(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._counters["frames_emitted"] += 1
            self._emitted_times.append(now)
            self.last_frame_at = now

    def frame_handled(self) -> None:
        """A frame left the pipeline (emitted or dropped): the pipeline is alive."""
        with self._lock:
            self.last_frame_at = time.monotonic()

    def fps(self) -> float:
        """Emitted frames per second over the last (up to) 64 frames."""
        with self._lock:
            times = list(self._emitted_times)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def get(self, name: str, **labels: str) -> float:
        """A counter's value; with labels, the sum over entries that match them."""
        with self._lock:
            if not labels and name in self._counters:
                return self._counters[name]
            wanted = set(labels.items())
            return sum(v for key, v in self._labelled.get(name, {}).items() if wanted <= set(key))

    def snapshot(self) -> dict[str, Any]:
        """Every number as plain data (counters, labelled counters, gauges, mean latencies)."""
        with self._lock:
            labelled = {
                name: {
                    ",".join(f"{k}={v}" for k, v in key): value for key, value in entries.items()
                }
                for name, entries in self._labelled.items()
            }
            latency_ms = {
                stage: round(1000.0 * self._latency_sum[stage] / count, 3)
                for stage, count in self._latency_count.items()
                if count
            }
            return {
                "counters": dict(self._counters),
                "labelled": labelled,
                "gauges": dict(self._gauges),
                "mean_latency_ms": latency_ms,
            }

    def labelled_counters(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        """A copy of the labelled counters: name -> sorted label items -> value."""
        with self._lock:
            return {name: dict(entries) for name, entries in self._labelled.items()}

    def _histograms(self) -> Iterator[tuple[str, list[float], float]]:
        with self._lock:
            for stage, buckets in self._latency.items():
                yield stage, list(buckets), self._latency_sum[stage]


class StatsCollector:
    """A ``prometheus_client`` collector reading :class:`Stats` at scrape time: one agent's, or
    several cameras' (a mapping of camera id to its stats), each sample then labelled
    ``camera``."""

    def __init__(self, stats: Stats | Mapping[str, Stats], prefix: str = "uunet_edge") -> None:
        self.cameras: Mapping[str, Stats] | None = None if isinstance(stats, Stats) else stats
        self.stats = stats if isinstance(stats, Stats) else None
        self.prefix = prefix

    def _sources(self) -> list[tuple[list[str], Stats]]:
        if self.cameras is None:
            assert self.stats is not None
            return [([], self.stats)]
        return [([camera], stats) for camera, stats in self.cameras.items()]

    def collect(self) -> Iterator[Metric]:
        sources = self._sources()
        camera = [] if self.cameras is None else ["camera"]
        snaps = [
            (values, stats, stats.snapshot(), stats.labelled_counters())
            for values, stats in sources
        ]

        def help_of(name: str) -> str:
            return COUNTER_HELP.get(name, name.replace("_", " "))

        for name in sorted({n for *_, snap, _ in snaps for n in snap["counters"]}):
            family = CounterMetricFamily(f"{self.prefix}_{name}", help_of(name), labels=camera)
            for values, _, snap, _ in snaps:
                if name in snap["counters"]:
                    family.add_metric(values, snap["counters"][name])
            yield family
        for name in sorted({n for *_, labelled in snaps for n in labelled}):
            entries = [(values, labelled.get(name, {})) for values, _, _, labelled in snaps]
            label_names = sorted({k for _, e in entries for key in e for k, _ in key})
            family = CounterMetricFamily(
                f"{self.prefix}_{name}", help_of(name), labels=camera + label_names
            )
            for values, per_key in entries:
                for key, value in per_key.items():
                    as_dict = dict(key)
                    family.add_metric(values + [as_dict.get(n, "") for n in label_names], value)
            yield family
        fps = GaugeMetricFamily(
            f"{self.prefix}_fps", "Emitted frames per second (recent)", labels=camera
        )
        for values, stats, _, _ in snaps:
            fps.add_metric(values, stats.fps())
        yield fps
        for name in sorted({n for *_, snap, _ in snaps for n in snap["gauges"]}):
            gauge = GaugeMetricFamily(
                f"{self.prefix}_{name}", name.replace("_", " "), labels=camera
            )
            for values, _, snap, _ in snaps:
                if name in snap["gauges"]:
                    gauge.add_metric(values, snap["gauges"][name])
            yield gauge
        histogram = HistogramMetricFamily(
            f"{self.prefix}_stage_latency_seconds",
            "Latency of pipeline stages",
            labels=[*camera, "stage"],
        )
        for values, stats, _, _ in snaps:
            for stage, buckets, total in stats._histograms():
                cumulative, running = [], 0.0
                for bound, count in zip((*LATENCY_BUCKETS, float("inf")), buckets, strict=True):
                    running += count
                    cumulative.append((str(bound) if bound != float("inf") else "+Inf", running))
                histogram.add_metric([*values, stage], cumulative, total)
        yield histogram
