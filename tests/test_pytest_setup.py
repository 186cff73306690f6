"""The suite's own setup: pyproject.toml's addopts spread the test files over pytest-xdist
workers, one per CPU the run may use (tests/conftest.py), so it fits CI's time on 2 cores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# What the controller chose (conftest.py) and what a worker was told (the test).
_PROBE_CONFTEST = """\
from pathlib import Path


def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        chosen = f"{config.getoption('numprocesses')} {config.getoption('dist')}"
        (Path(__file__).parent / "controller.txt").write_text(chosen)
"""
_PROBE_TEST = """\
import os
from pathlib import Path


def test_probe():
    (Path(__file__).parent / "worker.txt").write_text(os.environ["PYTEST_XDIST_WORKER_COUNT"])
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pins CPUs (Linux)")
def test_a_run_pinned_to_one_cpu_gets_one_worker_and_whole_files_per_worker(tmp_path):
    """The README's command as it is (no ``-n``) on a process that may use one CPU of several:
    one worker, not one per core of the host; ``--dist loadfile``."""
    (tmp_path / "conftest.py").write_text(_PROBE_CONFTEST)
    (tmp_path / "test_probe.py").write_text(_PROBE_TEST)
    one_cpu = min(os.sched_getaffinity(0))
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_AUTO_NUM_WORKERS"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-c", str(REPO / "pyproject.toml"),
         "--rootdir", str(tmp_path), "-p", "tests.conftest", "-p", "no:cacheprovider",
         str(tmp_path / "test_probe.py")],
        cwd=REPO,
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, {one_cpu}),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "controller.txt").read_text() == "1 loadfile"
    assert (tmp_path / "worker.txt").read_text() == "1"
