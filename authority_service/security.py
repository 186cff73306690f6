"""Bearer tokens (short-lived HS256 JWTs) and the login rate limiter.

A token names its user (``sub``), the role at issue time, and the user's token generation
(``gen``). Every request re-reads the user from the store: a disabled user, a changed role or
password (which bump the generation) make older tokens invalid at once, whatever their expiry.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import jwt

from authority_service.errors import AuthenticationError, RateLimitedError
from authority_service.users import User, UserStore

__all__ = ["LoginRateLimiter", "TokenClaims", "TokenService"]

log = logging.getLogger(__name__)

_ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    subject: str
    role: str
    generation: int
    expires_at: int
    token_id: str


class TokenService:
    """Issue and verify access tokens.

    Args:
        key: the signing key (see :func:`authority_service.credentials.load_secrets`).
        ttl_s: lifetime of a token in seconds.
        issuer: ``iss`` and ``aud`` of every token.
    """

    def __init__(self, key: bytes, ttl_s: int, issuer: str) -> None:
        self._key = key
        self.ttl_s = ttl_s
        self.issuer = issuer

    def issue(self, user: User, now: float | None = None) -> tuple[str, int]:
        """Return a signed token for ``user`` and its lifetime in seconds."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "aud": self.issuer,
            "sub": user.name,
            "role": user.role.value,
            "gen": user.token_generation,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl_s,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM), self.ttl_s

    def verify(self, token: str) -> TokenClaims:
        """Check signature, issuer, audience and times.

        Raises:
            AuthenticationError: code ``token_expired`` or ``invalid_token``.
        """
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=self.issuer,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "nbf", "sub", "iss", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("the token has expired", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            # PyJWT's wording says which check failed: for the log, not for the client.
            log.info("bearer token refused: %s", exc)
            raise AuthenticationError("the token is invalid", code="invalid_token") from exc
        try:
            return TokenClaims(
                subject=str(claims["sub"]),
                role=str(claims.get("role", "")),
                generation=int(claims.get("gen", -1)),
                expires_at=int(claims["exp"]),
                token_id=str(claims["jti"]),
            )
        except (TypeError, ValueError) as exc:
            log.info("bearer token refused: bad claims: %s", exc)
            raise AuthenticationError("the token is invalid", code="invalid_token") from exc

    def authenticate(self, token: str, users: UserStore) -> User:
        """Verify ``token`` and return its (current, enabled) user.

        Raises:
            AuthenticationError: bad token, unknown or disabled user, or a revoked token.
        """
        claims = self.verify(token)
        user = users.get(claims.subject)
        if user is None or user.disabled:
            raise AuthenticationError(
                f"user {claims.subject!r} does not exist or is disabled", code="invalid_token"
            )
        if claims.generation != user.token_generation:
            raise AuthenticationError(
                "the token was revoked (password, role or status changed)", code="token_revoked"
            )
        return user

    @staticmethod
    def unverified_subject(token: str) -> str | None:
        """The ``sub`` a token claims, without trusting it (for the audit record of a refusal)."""
        try:
            sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
        except jwt.PyJWTError:
            return None
        return str(sub)[:64] if sub is not None else None


class _Window:
    """Timestamps of events within the last ``period`` seconds."""

    def __init__(self) -> None:
        self.events: deque[float] = deque()

    def count(self, now: float, period: float) -> int:
        while self.events and self.events[0] <= now - period:
            self.events.popleft()
        return len(self.events)


@dataclass
class _Lockout:
    """Failed logins of one (user name, client address) pair, and its back-off."""

    failures: _Window = field(default_factory=_Window)
    #: Lockouts so far; the next one lasts ``lockout_s * 2 ** strikes``.
    strikes: int = 0
    locked_until: float = 0.0
    last_event: float = 0.0


class LoginRateLimiter:
    """Limits on the token endpoint, kept in memory.

    * every request from one client address counts against ``per_client`` per ``period``;
    * failed logins are counted per (user name, client address): ``failures_per_user`` of them
      within ``period`` lock that pair out for ``lockout_s``, each further lockout of the pair
      twice as long as the last, up to ``lockout_max_s``. A pair is forgotten after a granted
      login from it, an admin's :meth:`unlock` of its user, or ``lockout_max_s`` without a
      failure or lockout.

    So a guesser at one address never locks the real user out at another (the lockout is
    theirs alone); the price is that a guesser spread over many addresses gets
    ``failures_per_user`` guesses per address before each back-off, not per account.

    Thread-safe. A single process holds the counts; with several server processes in front of
    one database each has its own (document the resulting multiplier).
    """

    def __init__(
        self,
        per_client: int,
        failures_per_user: int,
        period_s: float = 60.0,
        lockout_s: float = 60.0,
        lockout_max_s: float = 3600.0,
    ) -> None:
        self.per_client = per_client
        self.failures_per_user = failures_per_user
        self.period_s = period_s
        self.lockout_s = lockout_s
        self.lockout_max_s = max(lockout_max_s, lockout_s)
        self._clients: dict[str, _Window] = {}
        self._pairs: dict[tuple[str, str], _Lockout] = {}
        self._lock = threading.Lock()

    def _retry_after(self, window: _Window, now: float) -> int:
        return max(1, int(window.events[0] + self.period_s - now + 0.999))

    def check(self, client: str, user_name: str, now: float | None = None) -> None:
        """Count a login attempt; raise when the client is over its limit or the (user name,
        client) pair is locked out.

        Raises:
            RateLimitedError: over a limit (``retry_after_s`` set).
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            window = self._clients.setdefault(client, _Window())
            if window.count(now, self.period_s) >= self.per_client:
                raise RateLimitedError(
                    "too many token requests from this address", self._retry_after(window, now)
                )
            pair = self._pairs.get((user_name, client))
            if pair is not None and pair.locked_until > now:
                raise RateLimitedError(
                    "too many failed logins for this user from this address",
                    max(1, int(pair.locked_until - now + 0.999)),
                )
            window.events.append(now)
            self._prune(now)

    def record_failure(self, client: str, user_name: str, now: float | None = None) -> None:
        """Count a failed login for ``user_name`` from ``client``; lock the pair out when it
        reaches the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            pair = self._pairs.get((user_name, client))
            if pair is None or self._stale(pair, now):
                pair = self._pairs[(user_name, client)] = _Lockout()
            pair.last_event = now
            pair.failures.events.append(now)
            if pair.failures.count(now, self.period_s) >= self.failures_per_user:
                backoff = min(self.lockout_s * 2**pair.strikes, self.lockout_max_s)
                pair.locked_until = now + backoff
                pair.strikes += 1
                pair.failures.events.clear()

    def record_success(self, client: str, user_name: str) -> None:
        """Forget the failures of ``user_name`` from ``client`` (it logged in)."""
        with self._lock:
            self._pairs.pop((user_name, client), None)

    def unlock(self, user_name: str, now: float | None = None) -> int:
        """Forget every failure and lockout of ``user_name``; return how many client addresses
        had it locked out."""
        now = time.monotonic() if now is None else now
        with self._lock:
            keys = [key for key in self._pairs if key[0] == user_name]
            locked = sum(self._pairs[key].locked_until > now for key in keys)
            for key in keys:
                del self._pairs[key]
        return locked

    def _stale(self, pair: _Lockout, now: float) -> bool:
        return max(pair.locked_until, pair.last_event) + self.lockout_max_s <= now

    def _prune(self, now: float) -> None:
        # Bound memory: drop idle entries once the tables grow.
        if len(self._clients) > 10_000:
            for key in [k for k, w in self._clients.items() if not w.count(now, self.period_s)]:
                del self._clients[key]
        if len(self._pairs) > 10_000:
            for key in [k for k, p in self._pairs.items() if self._stale(p, now)]:
                del self._pairs[key]
