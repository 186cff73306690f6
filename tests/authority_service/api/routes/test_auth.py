"""/v1/token and /v1/me over real HTTP: tokens, refusals audited, rate limit."""

from __future__ import annotations

import logging
import time

import jwt

from authority_service.security import TokenService
from tests.authority_service.conftest import JWT_KEY, PASSWORD, assert_no_internals

ATTACKER = "127.0.0.2"  # another loopback address; the other clients connect from 127.0.0.1


def _login(client, password, user="ivy"):
    return client.post("/v1/token", data={"username": user, "password": password})


def _last_audit(live):
    return live.services.audit_log.records(limit=10_000)[-1]


def test_token_then_me(live):
    with live.client() as client:
        response = client.post("/v1/token", data={"username": "ivy", "password": PASSWORD})
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer" and body["role"] == "investigator"
        assert body["expires_in"] == 900
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["name"] == "ivy"
    assert _last_audit(live).action == "login"  # /me is not audited when granted


def test_wrong_password_and_unknown_user_get_the_same_401_and_are_audited(live):
    with live.client() as client:
        wrong = client.post("/v1/token", data={"username": "ivy", "password": "nope" * 4})
        unknown = client.post("/v1/token", data={"username": "eve", "password": "nope" * 4})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_credentials",
            "detail": "wrong user name or password",
        }
        assert response.headers["www-authenticate"] == "Bearer"
    record = _last_audit(live)
    assert (record.actor, record.action, record.outcome) == ("eve", "login", "refused")


def test_expired_and_forged_tokens_get_401_with_their_code(live):
    user = live.services.users.get("ivy")
    expired, _ = TokenService(JWT_KEY, 60, "uunet-authority").issue(user, now=1_000_000)
    forged, _ = TokenService(b"x" * 48, 60, "uunet-authority").issue(user)
    with live.client() as client:
        for token, code in ((expired, "token_expired"), (forged, "invalid_token")):
            response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401 and response.json()["error"] == code
            record = _last_audit(live)
            assert record.outcome == "refused" and code in record.detail
            assert record.actor == "unverified:ivy"  # the claim is recorded, not trusted
        assert client.get("/healthz").status_code == 200


def test_token_endpoint_is_rate_limited(server_factory):
    server = server_factory(auth={"login_attempts_per_minute": 3})
    with server.client() as client:
        codes = [
            client.post("/v1/token", data={"username": "ivy", "password": "bad" * 5}).status_code
            for _ in range(5)
        ]
        limited = client.post("/v1/token", data={"username": "ivy", "password": PASSWORD})
    assert codes == [401, 401, 401, 429, 429]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"] == "rate_limited"


def test_token_claims_are_short_lived_and_bound_to_the_service(live):
    claims = jwt.decode(
        live.token("audrey"), JWT_KEY, algorithms=["HS256"], audience="uunet-authority"
    )
    assert claims["exp"] - claims["iat"] == 900 and claims["iss"] == "uunet-authority"
    assert claims["role"] == "auditor" and "password" not in str(claims)


def test_a_user_name_with_a_newline_cannot_forge_a_log_line(server_factory, daemon_log):
    server = server_factory()  # a fresh one: this refusal is the first of its kind, so logged
    forged = "eve\n2024-05-01 10:00:00,000 INFO authority_service.audit: audit #9 login granted"
    with server.client() as client:
        response = client.post("/v1/token", data={"username": forged, "password": "x" * 12})
    assert response.status_code == 401
    lines = daemon_log.getvalue().splitlines()
    refused = [line for line in lines if "login refused" in line]
    assert len(refused) == 1 and "by eve\\n2024-05-01 10:00:00,000 INFO" in refused[0]
    assert not any(line.startswith("2024-05-01") for line in lines)


def test_failures_at_one_address_do_not_lock_out_the_user_at_another(server_factory):
    server = server_factory(
        auth={"login_attempts_per_minute": 100, "login_failures_per_user_per_minute": 5}
    )
    with server.client_from(ATTACKER) as guesser:
        codes = [_login(guesser, f"guess {i:08d}").status_code for i in range(8)]
        locked = _login(guesser, PASSWORD)
    assert codes == [401] * 5 + [429] * 3
    assert locked.status_code == 429 and locked.json()["error"] == "rate_limited"
    with server.client() as client:
        assert _login(client, PASSWORD).status_code == 200  # the real user, elsewhere
    record = _last_audit(server)
    assert (record.actor, record.outcome, record.client) == ("ivy", "granted", "127.0.0.1")


def test_the_same_address_backs_off_longer_after_each_lockout(server_factory):
    server = server_factory(
        auth={
            "login_attempts_per_minute": 100,
            "login_failures_per_user_per_minute": 3,
            "login_lockout_s": 1,
        }
    )
    waits = []
    with server.client_from(ATTACKER) as guesser:
        for _ in range(2):
            assert [_login(guesser, "wrong password!").status_code for _ in range(3)] == [401] * 3
            limited = _login(guesser, PASSWORD)
            assert limited.status_code == 429
            waits.append(int(limited.headers["retry-after"]))
            time.sleep(waits[-1] + 0.05)
        assert _login(guesser, PASSWORD).status_code == 200
    assert waits == [1, 2]


def test_bad_token_bodies_hide_pyjwt_wording_which_the_server_logs(live, caplog):
    user = live.services.users.get("ivy")
    forged, _ = TokenService(b"x" * 48, 60, "uunet-authority").issue(user)
    other_issuer, _ = TokenService(JWT_KEY, 60, "someone-else").issue(user)
    caplog.set_level(logging.INFO, logger="authority_service")
    with live.client() as client:
        for token in (forged, other_issuer, "not-a-jwt"):
            response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401 and response.json()["error"] == "invalid_token"
            assert_no_internals(response.json())
            assert "issuer" not in response.json()["detail"].lower()
    logged = caplog.text
    assert "Signature verification failed" in logged and "Not enough segments" in logged
    assert "Invalid issuer" in logged


def test_oversized_chunked_login_413_and_audited_a_small_one_served(live):
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    def chunked(body: bytes):
        request = client.build_request(
            "POST",
            "/v1/token",
            content=(body[i : i + 4096] for i in range(0, len(body), 4096)),
            headers=form,
        )
        assert "content-length" not in request.headers  # Transfer-Encoding: chunked
        return client.send(request)

    with live.client() as client:
        huge = chunked(b"username=ivy&password=" + b"x" * 70_000)
        record = _last_audit(live)
        small = chunked(f"username=ivy&password={PASSWORD}".encode())
    assert huge.status_code == 413 and huge.json()["error"] == "upload_too_large"
    assert (record.actor, record.action, record.outcome) == (
        "anonymous",
        "oversized_request",
        "refused",
    )
    assert "POST /v1/token" in record.detail and record.client == "127.0.0.1"
    assert small.status_code == 200 and small.json()["token_type"] == "bearer"
