"""Server-side sessions of the console: a random id in an HttpOnly cookie, a bearer token here.

Signing in opens a :class:`Session` holding an access token issued by the API's
:class:`~authority_service.security.TokenService` and a CSRF token. The cookie carries only the
session id (32 random bytes); the store keeps it hashed. Every request authenticates the
session's access token exactly as the API authenticates a bearer
(:func:`authority_service.api.deps.admit`), so a session lasts as long as a token
(``auth.token_ttl_s``, from sign-in, not extended by use) and ends, like a token, when its user
is disabled or their password or role changes. Signing out removes it at once.

Sessions live in this process's memory: a restart signs everybody out (``uunet-authority
serve`` runs one process). The store holds at most ``max_sessions``; past that the expired ones
go, then the oldest.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from authority_service.security import TokenService
from authority_service.users import User

__all__ = ["Session", "SessionStore"]


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


@dataclass
class Session:
    """One signed-in browser."""

    user: str
    #: The access token the session authenticates with (as a bearer would).
    token: str
    #: Sent back with every state-changing request (form field or ``X-CSRF-Token``).
    csrf: str
    #: Unix time the token expires (the cookie's ``Max-Age`` ends then too).
    expires_at: float
    #: A one-time message for the next page ("user added").
    flash: str | None = None


class SessionStore:
    """The console's sessions, by (hashed) id. Thread-safe.

    Args:
        tokens: issues each session's access token.
        max_sessions: the most sessions held at once.
    """

    def __init__(self, tokens: TokenService, max_sessions: int = 10_000) -> None:
        self.tokens = tokens
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, user: User, now: float | None = None) -> tuple[str, Session]:
        """Open a session for ``user`` (its token issued at ``now``, default: now); return the
        id for the cookie and the session."""
        issued = time.time() if now is None else now
        token, ttl = self.tokens.issue(user, now=issued)
        session = Session(
            user=user.name,
            token=token,
            csrf=secrets.token_urlsafe(32),
            expires_at=issued + ttl,
        )
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._make_room()
            self._sessions[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The session of a cookie's id, or ``None`` (no cookie, unknown or signed out)."""
        if not session_id:
            return None
        with self._lock:
            return self._sessions.get(_key(session_id))

    def close(self, session_id: str | None) -> Session | None:
        """End a session (sign out, or its token was refused); return it if it existed."""
        if not session_id:
            return None
        with self._lock:
            return self._sessions.pop(_key(session_id), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _make_room(self) -> None:
        if len(self._sessions) < self.max_sessions:
            return
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
        while len(self._sessions) >= self.max_sessions:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].expires_at)
            del self._sessions[oldest]
