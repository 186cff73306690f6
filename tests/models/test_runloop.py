"""models.runloop: log/checkpoint cadence, the final checkpoint, and stopping on SIGTERM."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from models.runloop import RunDir, run_steps


@dataclass
class _Schedule:
    steps: int
    log_every: int = 2
    checkpoint_every: int = 4


def test_logs_means_and_checkpoints_on_schedule_and_at_the_end():
    logged, saved = [], []
    last = run_steps(
        start=0,
        schedule=_Schedule(steps=7),
        step=lambda i: {"loss": float(i)},
        on_log=lambda s, v: logged.append((s, v["loss"])),
        on_checkpoint=saved.append,
        progress=False,
    )
    assert last == 7
    assert logged == [(2, 0.5), (4, 2.5), (6, 4.5), (7, 6.0)]  # means of each window
    assert saved == [4, 7]


def test_resume_starts_after_the_given_step():
    seen = []
    run_steps(
        start=5,
        schedule=_Schedule(steps=7),
        step=lambda i: seen.append(i) or {},
        on_log=lambda s, v: None,
        on_checkpoint=lambda s: None,
        progress=False,
    )
    assert seen == [5, 6]


def test_sigterm_stops_after_the_current_step_with_a_checkpoint():
    saved = []

    def step(i: int) -> dict[str, float]:
        if i == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return {}

    before = signal.getsignal(signal.SIGTERM)
    last = run_steps(
        start=0,
        schedule=_Schedule(steps=100, checkpoint_every=50),
        step=step,
        on_log=lambda s, v: None,
        on_checkpoint=saved.append,
        progress=False,
    )
    assert last == 3 and saved == [3]
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


def test_a_deadline_ends_the_loop_with_a_checkpoint():
    saved = []

    def step(i: int) -> dict[str, float]:
        time.sleep(0.02)
        return {}

    last = run_steps(
        start=0,
        schedule=_Schedule(steps=10_000, checkpoint_every=5_000),
        step=step,
        on_log=lambda s, v: None,
        on_checkpoint=saved.append,
        progress=False,
        deadline=time.monotonic() + 0.2,
    )
    assert 1 <= last < 100 and saved == [last]


def test_history_is_truncated_to_the_checkpoint_on_resume(tmp_path):
    run = RunDir(tmp_path)
    for step in (1, 2, 3, 4):
        run.append_history({"step": step, "loss": 1.0})
    run.truncate_history(2)
    assert [r["step"] for r in run.read_history()] == [1, 2]
