"""Refusals of unauthenticated requests, written to the audit log once per window with a count.

Anyone can send a bad token or a wrong password, and a record per refusal (each synced to disk)
lets anyone flood the audit log. So for each ``(client address, action, error code)``:

* the first refusal is recorded at once, like any other (by the API's error handlers);
* the next ones within ``audit.refusal_window_s`` seconds are only counted, and written as one
  record (``detail``: ``repeated N more times ...``, see :func:`refusal_count`) when the window
  closes (a background sweep), when the next refusal after it arrives, or when the service
  stops (:meth:`RefusalAggregator.close`).

The count of every refusal thus ends up in the log. Past ``audit.refusal_max_sources`` open
windows (someone rotating addresses), refusals from further addresses share one window per
action and code under the address ``*``, so neither the log nor this table grows without bound.
Refusals of authenticated users (a wrong role, a bad field) are not aggregated: one record each.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from sqlalchemy.exc import SQLAlchemyError

from authority_service.audit import AuditEntry, AuditRecord

__all__ = ["OVERFLOW_CLIENT", "RefusalAggregator", "RefusalKey", "refusal_count"]

log = logging.getLogger(__name__)

#: The client address of the window shared by addresses beyond ``max_sources``.
OVERFLOW_CLIENT = "*"
_NAMES_SHOWN = 5
_REPEATED = re.compile(r"repeated (\d+) more times ")


def refusal_count(record: AuditRecord) -> int:
    """How many refusals ``record`` stands for: N for a window's ``repeated N more times``
    record, else 1."""
    match = _REPEATED.match(record.detail or "")
    return int(match.group(1)) if match else 1


def _now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RefusalKey:
    """What refusals are counted under."""

    client: str
    action: str
    code: str


@dataclass
class _Window:
    opened: float
    #: Refusals counted since the window's first (which was recorded at once).
    count: int = 0
    first_at: str = ""
    last_at: str = ""
    last: AuditEntry | None = None
    actors: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    clients: dict[str, None] = field(default_factory=dict)

    def merge(self, other: _Window) -> None:
        self.count += other.count
        self.first_at = min(filter(None, (self.first_at, other.first_at)), default="")
        self.last_at = max(self.last_at, other.last_at)
        self.last = self.last or other.last
        for names, more in ((self.actors, other.actors), (self.clients, other.clients)):
            for name in more:
                if len(names) <= _NAMES_SHOWN:
                    names[name] = None


def _names(names: dict[str, None]) -> str:
    shown = list(names)[:_NAMES_SHOWN]
    return ", ".join(shown) + (" and others" if len(names) > _NAMES_SHOWN else "")


class RefusalAggregator:
    """Count unauthenticated refusals per :class:`RefusalKey` and window; write the counts.

    Thread-safe. ``record`` appends to the audit log (it raises when it cannot; the count is
    then kept and written at the next sweep). A ``window_s`` of 0 aggregates nothing.
    """

    def __init__(
        self,
        record: Callable[[AuditEntry], object],
        window_s: float,
        max_sources: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.record = record
        self.window_s = window_s
        self.max_sources = max_sources
        self.clock = clock
        self._windows: dict[RefusalKey, _Window] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def absorb(self, key: RefusalKey, entry: AuditEntry) -> bool:
        """Count the refusal ``entry`` under ``key``.

        Returns:
            ``True`` when it was counted in an open window (the caller records nothing);
            ``False`` when it opens a window: the caller must record it now, as usual.
        """
        if self.window_s <= 0:
            return False
        now = self.clock()
        closed: tuple[RefusalKey, _Window] | None = None
        with self._lock:
            if key not in self._windows and len(self._windows) >= self.max_sources:
                key = RefusalKey(OVERFLOW_CLIENT, key.action, key.code)
            window = self._windows.get(key)
            if window is not None and now - window.opened >= self.window_s:
                closed = key, self._windows.pop(key)
                window = None
            if window is None:
                self._windows[key] = _Window(opened=now)
                self._start_sweeper()
            else:
                window.count += 1
                window.first_at = window.first_at or _now_text()
                window.last_at = _now_text()
                window.last = entry
                for names, name in ((window.actors, entry.actor), (window.clients, entry.client)):
                    if name is not None and len(names) <= _NAMES_SHOWN:
                        names[name] = None
        if closed is not None:
            self._write(*closed)  # the closed window's count goes before the new window's first
        return window is not None

    def flush(self, *, all_windows: bool = False) -> None:
        """Write the counts of the closed windows (of every window with ``all_windows``)."""
        now = self.clock()
        with self._lock:
            done = [
                key
                for key, window in self._windows.items()
                if all_windows or now - window.opened >= self.window_s
            ]
            closed = [(key, self._windows.pop(key)) for key in done]
        for key, window in closed:
            self._write(key, window)

    def close(self) -> None:
        """Stop the sweep and write every pending count (at shutdown)."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=30)
        self.flush(all_windows=True)

    def _write(self, key: RefusalKey, window: _Window) -> None:
        if not window.count or window.last is None:
            return
        names = f" as {_names(window.actors)}" if len(window.actors) > 1 else ""
        if key.client == OVERFLOW_CLIENT:
            names += f" from {_names(window.clients)}"
        detail = (
            f"repeated {window.count} more times from {window.first_at} to {window.last_at}"
            f"{names}: {window.last.detail}"
        )
        actor = next(iter(window.actors)) if len(window.actors) == 1 else "anonymous"
        entry = AuditEntry(
            **{**asdict(window.last), "actor": actor, "client": key.client, "detail": detail}
        )
        try:
            self.record(entry)
        except (SQLAlchemyError, OSError) as exc:
            log.error(
                "cannot write %d refusals of %s by %s yet (kept for the next sweep): %s",
                window.count,
                key.action,
                key.client,
                exc,
            )
            with self._lock:
                pending = self._windows.setdefault(key, _Window(opened=window.opened))
                pending.merge(window)

    def _start_sweeper(self) -> None:
        # Called with the lock held, on the first window: the CLI never starts one.
        if self._sweeper is not None or self._stop.is_set():
            return
        period = min(max(self.window_s / 10, 0.05), 5.0)

        def sweep() -> None:
            while not self._stop.wait(period):
                self.flush()

        self._sweeper = threading.Thread(target=sweep, name="audit-refusals", daemon=True)
        self._sweeper.start()
