"""The parts every training run shares: its directory, history, stop signals and the loop."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

__all__ = ["RunDir", "Schedule", "StopFlag", "run_steps", "stop_on_signals"]

log = logging.getLogger(__name__)


@dataclass
class RunDir:
    """A training run's folder: ``config.yml``, ``checkpoint.pt``, ``history.jsonl``, PNGs."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def config(self) -> Path:
        return self.path / "config.yml"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def history(self) -> Path:
        return self.path / "history.jsonl"

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def append_history(self, record: dict[str, Any]) -> None:
        with self.history.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read_history(self) -> list[dict[str, Any]]:
        if not self.history.is_file():
            return []
        records = []
        for line in self.history.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
        return records

    def truncate_history(self, step: int) -> None:
        """Drop records logged after ``step`` (they belong to work lost with a kill)."""
        kept = [r for r in self.read_history() if r.get("step", 0) <= step]
        self.history.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")


@dataclass
class StopFlag:
    """Set by SIGTERM/SIGINT; the loop checkpoints and returns at the end of the current step."""

    requested: bool = False
    signal_name: str = ""


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Install SIGTERM/SIGINT handlers that set a :class:`StopFlag` (restored on exit)."""
    flag = StopFlag()

    def handler(signum: int, _frame: FrameType | None) -> None:
        flag.requested = True
        flag.signal_name = signal.Signals(signum).name
        log.warning("%s received: stopping after this step", flag.signal_name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class _Averager:
    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def mean_and_reset(self) -> dict[str, float]:
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


class Schedule(Protocol):
    """The part of a training config the loop reads."""

    steps: int
    log_every: int
    checkpoint_every: int


def run_steps(
    *,
    start: int,
    schedule: Schedule,
    step: Callable[[int], dict[str, float]],
    on_log: Callable[[int, dict[str, float]], None],
    on_checkpoint: Callable[[int], None],
    progress: bool = True,
    description: str = "training",
    deadline: float | None = None,
) -> int:
    """Run steps ``start+1 .. schedule.steps``; log means every ``log_every``, checkpoint
    every ``checkpoint_every``.

    SIGTERM/SIGINT end the loop after the current step, and so does reaching ``deadline`` (a
    :func:`time.monotonic` value: a wall-clock budget). A checkpoint is always written at the
    end (reached the last step, a stop signal or the deadline). Returns the last completed step.
    """
    total = schedule.steps
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc=description, dynamic_ncols=True)
    averager = _Averager()
    current = last_saved = start
    started = time.monotonic()
    with stop_on_signals() as stop:
        try:
            while current < total and not stop.requested:
                if deadline is not None and time.monotonic() >= deadline:
                    log.info("%s: time budget reached at step %d", description, current)
                    break
                averager.add(step(current))
                current += 1
                if bar is not None:
                    bar.update(1)
                if current % schedule.log_every == 0 or current == total:
                    means = averager.mean_and_reset()
                    means["seconds"] = time.monotonic() - started
                    on_log(current, means)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3g}" for k, v in list(means.items())[:4]})
                if current % schedule.checkpoint_every == 0:
                    on_checkpoint(current)
                    last_saved = current
        finally:
            if bar is not None:
                bar.close()
        if current != last_saved:
            on_checkpoint(current)
    return current
