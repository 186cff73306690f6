"""Fixtures every test package uses."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from shared.log_safety import configure_logging


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
