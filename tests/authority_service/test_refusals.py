"""authority_service.refusals: a flood of unauthenticated refusals becomes a few counted records.

Over real HTTP (a live server, its SQLite audit log) and, for the window arithmetic, with a
clock the test moves (on an audit log in SQLite and in PostgreSQL).
"""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from authority_service.audit import AuditEntry, AuditLog
from authority_service.refusals import OVERFLOW_CLIENT, RefusalAggregator, RefusalKey, refusal_count
from authority_service.security import TokenService
from tests.authority_service.backends import open_database

OTHER_CLIENT = "127.0.0.2"  # a second loopback address: a client the server tells apart
FORGED = TokenService(b"not-the-authority-key-" * 3, 60, "uunet-authority")


def _refusals(server, action: str):
    return [
        r
        for r in server.services.audit_log.records(limit=100_000)
        if r.action == action and r.outcome == "refused"
    ]


def _forged_token(server) -> dict[str, str]:
    token, _ = FORGED.issue(server.services.users.get("ivy"))
    return {"Authorization": f"Bearer {token}"}


def test_a_bad_token_flood_is_recorded_once_then_counted(server_factory):
    server = server_factory(audit={"refusal_window_s": 60})
    headers = _forged_token(server)
    with server.client() as client:
        codes = {client.get("/v1/me", headers=headers).status_code for _ in range(200)}
        assert codes == {401}
        first = _refusals(server, "whoami")
        # The first refusal is in the log at once, before its response was sent.
        assert len(first) == 1 and refusal_count(first[0]) == 1
        assert "401 invalid_token" in first[0].detail and first[0].actor == "unverified:ivy"
        server.services.refusals.flush(all_windows=True)
    records = _refusals(server, "whoami")
    assert len(records) == 2 and sum(refusal_count(r) for r in records) == 200
    summary = records[1]
    assert summary.detail.startswith("repeated 199 more times from ")
    assert (summary.actor, summary.client) == ("unverified:ivy", "127.0.0.1")
    assert server.services.audit_log.verify().valid


def test_bad_logins_are_counted_per_client_and_flushed_at_shutdown(server_factory, tmp_path):
    server = server_factory(audit={"refusal_window_s": 60})
    with server.client() as client:
        for i in range(30):
            login = {"username": f"guess-{i % 7}", "password": "not the password"}
            assert client.post("/v1/token", data=login).status_code == 401
        # No bearer at all is another (action, reason): its first refusal is recorded at once.
        assert client.get("/v1/me").status_code == 401
    with server.client(transport=httpx.HTTPTransport(local_address=OTHER_CLIENT)) as other:
        refused = other.post("/v1/token", data={"username": "x", "password": "y" * 12})
        assert refused.status_code == 401
    before_stop = _refusals(server, "login")
    assert [(r.client, refusal_count(r)) for r in before_stop] == [
        ("127.0.0.1", 1),
        (OTHER_CLIENT, 1),
    ]
    assert len(_refusals(server, "whoami")) == 1
    server.stop()  # the lifespan's end writes what is still counted
    log = AuditLog(open_database(server.services.settings), tmp_path / "unused.json")
    logins = [r for r in log.records(limit=1000) if r.action == "login"]
    assert sum(refusal_count(r) for r in logins) == 31 and len(logins) == 3
    summary = logins[-1]
    assert summary.actor == "anonymous" and summary.client == "127.0.0.1"
    assert " as guess-1, guess-2, guess-3, guess-4, guess-5 and others: 401 " in summary.detail


def test_a_closed_window_is_written_without_further_traffic(server_factory):
    server = server_factory(audit={"refusal_window_s": 2})
    with server.client() as client:
        for _ in range(5):
            assert client.get("/v1/me").status_code == 401
        assert len(_refusals(server, "whoami")) == 1
        deadline = time.monotonic() + 10
        while len(_refusals(server, "whoami")) < 2:  # the sweep closes the window
            assert time.monotonic() < deadline, "the closed window was never written"
            time.sleep(0.05)
        assert client.get("/v1/me").status_code == 401  # opens a new window: recorded at once
    records = _refusals(server, "whoami")
    assert [refusal_count(r) for r in records] == [1, 4, 1]


def test_refusals_of_signed_in_users_keep_one_record_each(server_factory):
    server = server_factory(audit={"refusal_window_s": 60})
    with server.client() as client:
        for _ in range(5):
            assert client.get("/v1/audit", headers=server.auth("ivy")).status_code == 403
    records = _refusals(server, "read_audit")
    assert len(records) == 5 and all("403 permission_denied" in r.detail for r in records)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _entry(client: str, actor: str = "anonymous") -> AuditEntry:
    return AuditEntry(
        actor=actor, action="login", outcome="refused", client=client, detail="401 nope: x"
    )


@pytest.fixture
def audit(database, tmp_path) -> AuditLog:
    return AuditLog(database, tmp_path / "audit-head.json")


def test_next_refusal_after_the_window_writes_its_count_first(audit):
    clock = _Clock()
    refusals = RefusalAggregator(audit.append, 60, 100, clock=clock)
    key = RefusalKey("10.0.0.1", "login", "nope")
    absorbed = [refusals.absorb(key, _entry("10.0.0.1")) for _ in range(5)]
    assert absorbed == [False, True, True, True, True]  # the caller records the first
    clock.now += 61
    assert refusals.absorb(key, _entry("10.0.0.1")) is False  # a new window...
    assert [refusal_count(r) for r in audit.records()] == [4]  # ...after the old one's count
    refusals.close()
    assert [refusal_count(r) for r in audit.records()] == [4]  # nothing else was pending


def test_addresses_past_the_limit_share_one_window(audit):
    refusals = RefusalAggregator(audit.append, 60, 2, clock=_Clock())
    for client in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.3"):
        refusals.absorb(RefusalKey(client, "login", "nope"), _entry(client))
    refusals.close()
    (shared,) = audit.records()
    assert shared.client == OVERFLOW_CLIENT and refusal_count(shared) == 2
    assert "from 10.0.0.4, 10.0.0.3:" in shared.detail


def test_a_count_that_cannot_be_written_is_kept_for_the_next_sweep(audit):
    calls = []

    def flaky(entry: AuditEntry) -> object:
        calls.append(entry)
        if len(calls) == 1:
            raise OperationalError("INSERT INTO audit_log ...", {}, Exception("database is locked"))
        return audit.append(entry)

    clock = _Clock()
    refusals = RefusalAggregator(flaky, 60, 100, clock=clock)
    key = RefusalKey("10.0.0.1", "login", "nope")
    for _ in range(4):
        refusals.absorb(key, _entry("10.0.0.1"))
    clock.now += 61
    refusals.flush()  # fails: kept
    assert audit.records() == []
    refusals.flush()
    assert [refusal_count(r) for r in audit.records()] == [3]


def test_a_zero_window_aggregates_nothing(audit):
    refusals = RefusalAggregator(audit.append, 0, 100)
    key = RefusalKey("10.0.0.1", "login", "nope")
    assert not any(refusals.absorb(key, _entry("10.0.0.1")) for _ in range(3))


def test_a_flood_of_oversized_bodies_is_recorded_once_then_counted(server_factory):
    """Over-limit JSON bodies are refused before any sign-in: counted like bad tokens."""
    server = server_factory(audit={"refusal_window_s": 60})
    body = b"x" * (70 * 1024)
    with server.client() as client:
        plain = {"content-type": "text/plain"}
        responses = [client.post("/v1/token", content=body, headers=plain) for _ in range(40)]
        assert {response.status_code for response in responses} == {413}
        assert len(_refusals(server, "oversized_request")) == 1
        server.services.refusals.flush(all_windows=True)
    records = _refusals(server, "oversized_request")
    assert len(records) == 2 and sum(refusal_count(r) for r in records) == 40
