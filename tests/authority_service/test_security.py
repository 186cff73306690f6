"""authority_service.security: JWT issue/verify (expired, forged, revoked) and the rate limiter."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest

from authority_service.errors import AuthenticationError, RateLimitedError
from authority_service.security import LoginRateLimiter, TokenService
from authority_service.users import Role, SqlUserStore
from tests.authority_service.backends import open_database
from tests.authority_service.conftest import settings_for

KEY = b"a-signing-key-for-tests-0123456789-abcdefgh"


@pytest.fixture
def users(tmp_path) -> Iterator[SqlUserStore]:
    """An authority's user store (on the database ``$UUNET_TEST_DATABASE`` chooses)."""
    db = open_database(settings_for(tmp_path, tmp_path / "models"))
    store = SqlUserStore(db)
    store.add("ivy", Role.investigator, "$argon2id$placeholder")
    yield store
    db.close()


def test_issue_then_authenticate_returns_current_user(users):
    tokens = TokenService(KEY, 60, "uunet-authority")
    token, ttl = tokens.issue(users.get("ivy"))
    assert ttl == 60
    assert tokens.authenticate(token, users).name == "ivy"
    assert tokens.verify(token).role == "investigator"


def test_expired_token_raises_token_expired(users):
    tokens = TokenService(KEY, 60, "uunet-authority")
    token, _ = tokens.issue(users.get("ivy"), now=1_000_000)
    with pytest.raises(AuthenticationError) as info:
        tokens.authenticate(token, users)
    assert info.value.code == "token_expired"


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: jwt.encode(jwt.decode(t, options={"verify_signature": False}), b"k" * 40),
        lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"),
        lambda t: jwt.encode(
            {**jwt.decode(t, options={"verify_signature": False}), "aud": "other"}, KEY
        ),
        lambda t: "not.a.token",
    ],
    ids=["other-key", "edited-signature", "wrong-audience", "garbage"],
)
def test_forged_tokens_raise_invalid_token(users, forge):
    tokens = TokenService(KEY, 60, "uunet-authority")
    token, _ = tokens.issue(users.get("ivy"))
    with pytest.raises(AuthenticationError) as info:
        tokens.authenticate(forge(token), users)
    assert info.value.code == "invalid_token"


def test_alg_none_token_is_refused(users):
    tokens = TokenService(KEY, 60, "uunet-authority")
    token, _ = tokens.issue(users.get("ivy"))
    claims = jwt.decode(token, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(AuthenticationError):
        tokens.authenticate(unsigned, users)


def test_role_change_and_disabling_revoke_issued_tokens(users):
    tokens = TokenService(KEY, 60, "uunet-authority")
    token, _ = tokens.issue(users.get("ivy"))
    users.update("ivy", role=Role.auditor)
    with pytest.raises(AuthenticationError) as info:
        tokens.authenticate(token, users)
    assert info.value.code == "token_revoked"
    fresh, _ = tokens.issue(users.get("ivy"))
    users.update("ivy", disabled=True)
    with pytest.raises(AuthenticationError):
        tokens.authenticate(fresh, users)


def test_rate_limiter_per_client_then_recovers_after_period():
    limiter = LoginRateLimiter(per_client=3, failures_per_user=100, period_s=60)
    for i in range(3):
        limiter.check("10.0.0.1", "ivy", now=100.0 + i)
    with pytest.raises(RateLimitedError) as info:
        limiter.check("10.0.0.1", "ivy", now=103.0)
    assert 1 <= info.value.retry_after_s <= 60
    limiter.check("10.0.0.2", "ivy", now=103.0)  # another client is not affected
    limiter.check("10.0.0.1", "ivy", now=161.0)  # the window moved on


def test_rate_limiter_locks_out_a_user_at_the_failing_address_only():
    limiter = LoginRateLimiter(per_client=100, failures_per_user=5, period_s=60, lockout_s=60)
    for i in range(20):  # the attacker keeps trying; every failure is theirs
        try:
            limiter.check("203.0.113.9", "ivy", now=10.0 + i)
        except RateLimitedError:
            continue
        limiter.record_failure("203.0.113.9", "ivy", now=10.0 + i)
    with pytest.raises(RateLimitedError, match="from this address") as info:
        limiter.check("203.0.113.9", "ivy", now=30.0)
    assert info.value.retry_after_s == 44  # locked at t=14 (the 5th failure) for 60 s
    limiter.check("10.0.0.7", "ivy", now=30.0)  # the real user, at their own address
    limiter.check("203.0.113.9", "audrey", now=30.0)  # and another user at the attacker's


def _lock(limiter, client, now):
    for _ in range(limiter.failures_per_user):
        limiter.check(client, "ivy", now=now)
        limiter.record_failure(client, "ivy", now=now)
    with pytest.raises(RateLimitedError) as info:
        limiter.check(client, "ivy", now=now)
    return info.value.retry_after_s


def test_rate_limiter_backs_off_twice_as_long_each_lockout_up_to_the_cap():
    limiter = LoginRateLimiter(
        per_client=1000, failures_per_user=3, period_s=60, lockout_s=60, lockout_max_s=300
    )
    now, waits = 0.0, []
    for _ in range(5):
        waits.append(_lock(limiter, "198.51.100.4", now))
        now += waits[-1]
    assert waits == [60, 120, 240, 300, 300]
    # That long without a failure and the address starts over at the first back-off.
    assert _lock(limiter, "198.51.100.4", now + 300) == 60


def test_rate_limiter_unlock_and_a_granted_login_clear_lockouts():
    limiter = LoginRateLimiter(per_client=1000, failures_per_user=2, period_s=60, lockout_s=60)
    _lock(limiter, "a", 0.0)
    _lock(limiter, "b", 0.0)
    assert limiter.unlock("ivy", now=1.0) == 2
    limiter.check("a", "ivy", now=1.0)
    assert _lock(limiter, "a", 2.0) == 60  # the back-off starts over too
    limiter.record_failure("c", "ivy", now=3.0)
    limiter.record_success("c", "ivy")
    limiter.record_failure("c", "ivy", now=4.0)
    limiter.check("c", "ivy", now=4.0)  # one failure since the success: not locked
