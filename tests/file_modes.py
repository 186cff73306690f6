"""Helpers of the tests that check who may read the files the services create."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def umask(value: int) -> Iterator[None]:
    """Run the block under the process umask ``value`` (a shell's usual 022), then restore."""
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    """The permission bits of ``path`` (``0o600``)."""
    return stat.S_IMODE(path.stat().st_mode)


def modes_under(root: Path) -> dict[str, int]:
    """``{relative path: permission bits}`` of ``root`` (``"."``) and everything below it."""
    found = {".": mode(root)}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = mode(path)
    return found
