"""The anchor of the audit log's head: the files that tell a truncated or re-chained log.

``audit-head.json`` holds the anchored head ``{"seq": N, "hash": "<sha256>"}``;
``audit-head.journal.jsonl`` every head ever anchored, one such object per line, append-only.
Both are 0600 in a 0700 directory and fsynced on every write; the head file is replaced
atomically. :class:`~authority_service.audit.AuditLog` decides when the anchor may move.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from shared.private_files import open_private, private_dir

__all__ = ["AnchorExistsError", "HeadAnchor", "parse_head", "read_heads"]

_HEX64 = frozenset("0123456789abcdef")


class AnchorExistsError(RuntimeError):
    """Re-anchoring was asked while an anchor file is still there."""


def _head(seq: object, digest: object) -> tuple[int, str]:
    if (
        not isinstance(seq, int)
        or isinstance(seq, bool)
        or seq < 1
        or not isinstance(digest, str)
        or len(digest) != 64
        or not set(digest) <= _HEX64
    ):
        raise ValueError(f"not an audit head: seq {seq!r}, hash {digest!r}")
    return seq, digest


def parse_head(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` (a record number and its lower-case hex SHA-256) as ``(seq, hash)``.

    Raises:
        ValueError: not of that form.
    """
    seq, sep, digest = text.strip().partition(":")
    if not sep or not seq.isdigit():
        raise ValueError(f"{text!r} is not SEQ:HASH (e.g. 42:{'0' * 8}...)")
    return _head(int(seq), digest.lower())


def read_heads(path: str | Path) -> list[tuple[int, str]]:
    """The heads in ``path``: a copy of the head file (one JSON object) or of the journal (one
    per line), each ``{"seq": N, "hash": "<sha256>"}``.

    Raises:
        OSError: the file cannot be read.
        ValueError: a line is not such an object (its number is in the message).
    """
    heads = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            heads.append(_head(data["seq"], data["hash"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}: not an audit head ({exc})") from exc
    return heads


class HeadAnchor:
    """The head file at ``path`` and the journal next to it (``<stem>.journal.jsonl``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.journal_path = self.path.with_name(f"{self.path.stem}.journal.jsonl")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the anchor's lock (several processes, server and CLI, append to one log).

        Raises:
            OSError: the lock file cannot be created.
        """
        private_dir(self.path.parent)  # 0700, and the files below 0600
        with open_private(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def write(self, seq: int, digest: str) -> None:
        """Journal ``(seq, digest)`` and make it the anchored head (call it locked).

        Raises:
            OSError: the journal or the head file cannot be written.
        """
        line = json.dumps({"seq": seq, "hash": digest}) + "\n"
        with open_private(self.journal_path, "a", encoding="utf-8") as journal:
            journal.write(line)
            journal.flush()
            os.fsync(journal.fileno())
        tmp = self.path.with_suffix(".tmp")
        with open_private(tmp, "w", encoding="utf-8") as head:
            head.write(line)
            head.flush()
            os.fsync(head.fileno())
        os.replace(tmp, self.path)

    def read(self) -> tuple[int, str] | None:
        """The anchored ``(seq, hash)``; ``None`` when there is no head file, ``(-1, "")``
        when it cannot be read (itself a finding: ``verify`` reports it)."""
        try:
            data = json.loads(self.path.read_text())
            return int(data["seq"]), str(data["hash"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return (-1, "")

    def read_journal(self) -> list[tuple[int, str]]:
        """Every head anchored so far, oldest first (empty before the first append).

        Raises:
            OSError: the journal exists but cannot be read.
            ValueError: a line of it is not a head.
        """
        try:
            return read_heads(self.journal_path)
        except FileNotFoundError:
            return []
