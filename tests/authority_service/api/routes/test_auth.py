"""/v1/token and /v1/me over real HTTP: tokens, refusals audited, rate limit."""

from __future__ import annotations

import jwt

from authority_service.security import TokenService
from tests.authority_service.conftest import JWT_KEY, PASSWORD


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
