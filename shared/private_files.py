"""Files and directories only their owner can read, whatever the process's umask.

The authority's database (password hashes), audit anchor and reconstructed clips, and the
edge's evidence segments, are created with these modes in code; a systemd unit's ``UMask=``
is a second line of defence, not the only one.

* :func:`private_dir` creates a directory (and missing parents) with mode 0700.
* :func:`create_private_file` creates an empty file with mode 0600 for a writer that opens it
  by name afterwards (SQLite, FFmpeg: they keep an existing file's mode).
* :func:`open_private` opens a file for writing with mode 0600.

Each takes a ``mode`` (the edge's evidence is also readable by the service's group: 0640 in
0750 directories). A path that already exists keeps its mode, except a file
:func:`open_private` writes, which it narrows; one that is readable beyond ``mode`` is logged as
a WARNING.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

__all__ = [
    "GROUP_DIR_MODE",
    "GROUP_FILE_MODE",
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "create_private_file",
    "open_private",
    "private_dir",
]

log = logging.getLogger(__name__)

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
GROUP_FILE_MODE = 0o640
GROUP_DIR_MODE = 0o750

_OPEN_FLAGS = {
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


def _warn_if_wider(path: Path, actual: int, mode: int) -> None:
    if stat.S_IMODE(actual) & ~mode:
        log.warning(
            "%s is mode %04o, readable beyond its owner's %04o; chmod %o it",
            path,
            stat.S_IMODE(actual),
            mode,
            mode,
        )


def private_dir(path: str | Path, mode: int = PRIVATE_DIR_MODE) -> Path:
    """Create the directory ``path`` (and missing parents) with ``mode``; return it.

    Raises:
        OSError: it cannot be created, or exists and is not a directory.
    """
    path = Path(path)
    try:
        path.mkdir(mode=mode, exist_ok=False)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=mode, exist_ok=True)
    except FileExistsError:
        if not path.is_dir():
            raise
        _warn_if_wider(path, path.stat().st_mode, mode)
    return path


def create_private_file(path: str | Path, mode: int = PRIVATE_FILE_MODE) -> Path:
    """Create ``path`` empty with ``mode`` unless it exists; return it.

    Raises:
        OSError: it cannot be created.
    """
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    except FileExistsError:
        _warn_if_wider(path, path.stat().st_mode, mode)
    return path


def open_private(
    path: str | Path, mode: str = "w", file_mode: int = PRIVATE_FILE_MODE, **kwargs: Any
) -> IO[Any]:
    """Open ``path`` for writing (``mode``: ``w``/``a``/``x``, ``b`` for binary) so that only
    its owner can read it: created with ``file_mode``, or narrowed to it when it exists and
    belongs to this user. ``kwargs`` go to :func:`os.fdopen` (``encoding``, ...).

    Raises:
        ValueError: a ``mode`` that does not write.
        OSError: it cannot be opened.
    """
    flags = _OPEN_FLAGS.get(mode.replace("b", ""))
    if flags is None:
        raise ValueError(f"open_private writes files; mode {mode!r} is not w, a or x")
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), file_mode)
    try:
        info = os.fstat(fd)
        if stat.S_IMODE(info.st_mode) & ~file_mode and info.st_uid == os.geteuid():
            os.fchmod(fd, file_mode)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise
