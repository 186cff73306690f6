"""What the storage tests run in processes of their own (spawned: each its own interpreter, as
a server and CLI commands next to it are). Only the storage modules are imported here, so a
process starts fast."""

from __future__ import annotations

from multiprocessing.synchronize import Barrier
from pathlib import Path

from authority_service.audit import AuditEntry, AuditLog
from authority_service.db import Database


def open_at_once(url: str, password: str | None, barrier: Barrier) -> None:
    """Open (so create or migrate) the database at ``url`` together with the other processes."""
    barrier.wait(timeout=60)
    Database(url, password=password).close()


def append_at_once(
    url: str, password: str | None, anchor: Path, writer: int, n: int, barrier: Barrier
) -> None:
    """Append ``n`` records (actors ``p<writer>-<i>``) once every writer is ready."""
    audit = AuditLog(Database(url, password=password), anchor)
    barrier.wait(timeout=60)
    for i in range(n):
        audit.append(AuditEntry(actor=f"p{writer}-{i}", action="login", outcome="granted"))
    audit.db.close()
