"""Fixtures every test package uses."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import pytest

from shared.log_safety import configure_logging


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent with -p no:xdist
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (pyproject's addopts): one worker per CPU this process may run on (its
    affinity: what ``nproc`` says, a container's cpuset), never psutil's count of the host's
    cores, which can be more than this process gets or, with hyperthreads, half of them.
    ``$PYTEST_XDIST_AUTO_NUM_WORKERS`` still chooses (pytest-xdist reads it: ``None`` here)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    affinity = getattr(os, "sched_getaffinity", None)  # Linux
    return len(affinity(0)) if affinity else os.cpu_count() or 1


@pytest.fixture
def daemon_log() -> Iterator[io.StringIO]:
    """Logging set up as the daemons set it up (on an empty root logger), into a buffer."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers.clear()
    stream = io.StringIO()
    try:
        configure_logging("INFO", stream=stream)
        yield stream
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
