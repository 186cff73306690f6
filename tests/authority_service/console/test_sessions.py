"""Console sessions: the store, and over HTTP how a session ends (sign out, expiry, a disabled
user, a new password) and how sign-in is limited and audited like ``POST /v1/token``."""

from __future__ import annotations

import time

import pytest

from authority_service.console.sessions import SessionStore
from authority_service.security import TokenService
from authority_service.users import Role, User
from tests.authority_service.conftest import JWT_KEY, PASSWORD
from tests.authority_service.console.client import ConsoleClient, main_text


def _user(name: str = "ivy", generation: int = 0) -> User:
    return User(name, Role.investigator, "hash", False, generation, "t", "t")


def _records(live, **filters):
    return live.services.audit_log.records(limit=100_000, **filters)


def test_store_opens_distinct_sessions_with_tokens_that_expire_like_api_tokens():
    tokens = TokenService(JWT_KEY, 900, "uunet-authority")
    store = SessionStore(tokens)
    first_id, first = store.open(_user())
    second_id, second = store.open(_user())
    assert first_id != second_id and first.csrf != second.csrf
    assert store.get(first_id) is first and store.get("forged") is None and store.get(None) is None
    claims = tokens.verify(first.token)
    assert claims.subject == "ivy" and claims.expires_at - time.time() == pytest.approx(900, abs=2)
    assert first.expires_at == pytest.approx(claims.expires_at, abs=1)
    assert store.close(first_id) is first and store.get(first_id) is None
    assert store.get(second_id) is second


def test_store_is_bounded_dropping_the_expired_then_the_oldest():
    store = SessionStore(TokenService(JWT_KEY, 60, "uunet-authority"), max_sessions=3)
    expired_id, _ = store.open(_user(), now=time.time() - 120)
    ids = [store.open(_user())[0] for _ in range(3)]
    assert store.get(expired_id) is None and len(store) == 3
    newest = store.open(_user())[0]
    assert len(store) == 3 and store.get(ids[0]) is None and store.get(newest) is not None


def test_signing_out_ends_the_session_on_the_server(live):
    with ConsoleClient(live) as ivy:
        ivy.sign_in("ivy")
        cookie = ivy.http.cookies["uunet_console"]
        response = ivy.post_form("/console/logout", {})
        assert response.status_code == 303
        assert response.headers["location"] == "/console/login?signed_out=1"
        assert "You have signed out." in main_text(ivy.get(response.headers["location"]).text)
    record = _records(live, actor="ivy")[-1]
    assert (record.action, record.outcome) == ("logout", "granted")
    with ConsoleClient(live) as replay:  # the old cookie, replayed, opens nothing
        replay.http.cookies.set("uunet_console", cookie, path="/console")
        page = replay.get("/console/")
    assert page.status_code == 401 and "Sign in to continue." in main_text(page.text)


def test_an_expired_session_shows_the_sign_in_page_and_is_audited(live):
    store = live.server.config.app.state.console_sessions
    ttl = live.services.settings.auth.token_ttl_s
    session_id, _ = store.open(live.services.users.get("ivy"), now=time.time() - ttl - 5)
    with ConsoleClient(live) as ivy:
        ivy.http.cookies.set("uunet_console", session_id, path="/console")
        page = ivy.get("/console/requests/new")
    assert page.status_code == 401
    assert "Your session has expired: sign in again. token_expired" in main_text(page.text)
    assert "uunet_console=" in page.headers["set-cookie"]  # the browser drops the cookie
    assert store.get(session_id) is None
    record = _records(live)[-1]
    assert (record.action, record.outcome) == ("new_request", "refused")
    assert record.actor == "unverified:ivy" and "token_expired" in record.detail


@pytest.mark.parametrize(
    ("change", "code"),
    [({"disabled": True}, "invalid_token"), ({"password": "a new password, long enough"}, None)],
)
def test_disabling_a_user_or_resetting_the_password_ends_their_sessions(
    server_factory, change, code
):
    live = server_factory()
    with ConsoleClient(live) as ivy:
        ivy.sign_in("ivy")
        assert ivy.get("/console/").status_code == 200
        with live.client() as api:
            assert api.patch("/v1/users/ivy", json=change, headers=live.auth("adam")).is_success
        page = ivy.get("/console/")
    assert page.status_code == 401
    assert (code or "token_revoked") in main_text(page.text)


def test_sign_in_wrong_password_lockout_and_audit_match_the_api(server_factory):
    live = server_factory(auth={"login_failures_per_user_per_minute": 2})
    with ConsoleClient(live) as browser:
        wrong = [browser.sign_in("ivy", "not the password!") for _ in range(2)]
        locked = browser.sign_in("ivy", PASSWORD)
    for response in wrong:
        assert response.status_code == 401
        assert "Wrong user name or password. invalid_credentials" in main_text(response.text)
    assert locked.status_code == 429 and "rate_limited" in main_text(locked.text)
    assert int(locked.headers["retry-after"]) > 0
    # The lockout is the API's own: a token request from the same address is refused too.
    with live.client() as api:
        token = api.post("/v1/token", data={"username": "ivy", "password": PASSWORD})
    assert token.status_code == 429
    logins = [(r.outcome, (r.detail or "").split(":")[0]) for r in _records(live, actor="ivy")]
    assert logins[-4:] == [
        ("refused", "401 invalid_credentials"),
        ("refused", "401 invalid_credentials"),
        ("refused", "429 rate_limited"),
        ("refused", "429 rate_limited"),
    ]


def test_a_granted_console_sign_in_is_audited_as_a_login(live):
    with ConsoleClient(live) as ivy:
        assert ivy.sign_in("ivy").status_code == 303
    record = [r for r in _records(live, actor="ivy") if r.action == "login"][-1]
    assert (record.outcome, record.role, record.detail) == (
        "granted",
        "investigator",
        "console session",
    )
