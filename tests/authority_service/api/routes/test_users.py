"""/v1/users over real HTTP: only admins manage users; changes revoke tokens; all audited."""

from __future__ import annotations

import json

from authority_service.api.app import SMALL_BODY_LIMIT
from tests.authority_service.conftest import PASSWORD


def test_admin_creates_user_who_can_log_in_and_role_change_revokes_token(live):
    with live.client() as client:
        created = client.post(
            "/v1/users",
            json={"name": "ines", "role": "investigator", "password": "a fine passphrase"},
            headers=live.auth("adam"),
        )
        assert created.status_code == 201 and created.json()["role"] == "investigator"
        token = client.post(
            "/v1/token", data={"username": "ines", "password": "a fine passphrase"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/me", headers=headers).status_code == 200
        changed = client.patch(
            "/v1/users/ines", json={"role": "auditor"}, headers=live.auth("adam")
        )
        assert changed.status_code == 200 and changed.json()["role"] == "auditor"
        revoked = client.get("/v1/me", headers=headers)
        assert revoked.status_code == 401 and revoked.json()["error"] == "token_revoked"
        duplicate = client.post(
            "/v1/users",
            json={"name": "ines", "role": "admin", "password": "a fine passphrase"},
            headers=live.auth("adam"),
        )
        assert duplicate.status_code == 409 and duplicate.json()["error"] == "user_exists"
    details = [r.detail for r in live.services.audit_log.records(limit=1000)]
    assert "user ines added as investigator" in details
    assert all("a fine passphrase" not in (d or "") for d in details)


def test_non_admins_get_403_and_bad_bodies_422(live):
    with live.client() as client:
        for user in ("ivy", "audrey"):
            response = client.get("/v1/users", headers=live.auth(user))
            assert response.status_code == 403 and response.json()["error"] == "permission_denied"
        short = client.post(
            "/v1/users",
            json={"name": "bob", "role": "admin", "password": "short"},
            headers=live.auth("adam"),
        )
        assert short.status_code == 422 and short.json()["field"] == "password"
        bad_role = client.post(
            "/v1/users",
            json={"name": "bob", "role": "root", "password": PASSWORD},
            headers=live.auth("adam"),
        )
        assert bad_role.status_code == 422 and bad_role.json()["error"] == "invalid_request"
        missing = client.patch("/v1/users/nobody", json={}, headers=live.auth("adam"))
        assert missing.status_code == 404


def test_oversized_json_body_413_before_parsing(live):
    with live.client() as client:
        response = client.post(
            "/v1/users",
            json={"name": "bob", "role": "admin", "password": "x" * 70_000},
            headers=live.auth("adam"),
        )
    assert response.status_code == 413 and response.json()["error"] == "upload_too_large"
    record = live.services.audit_log.records(limit=10_000)[-1]
    assert (record.action, record.outcome) == ("oversized_request", "refused")


def _records(server, action):
    return [r for r in server.services.audit_log.records(limit=10_000) if r.action == action]


def test_admin_unlock_lifts_a_login_lockout_and_is_audited(server_factory):
    server = server_factory(auth={"login_failures_per_user_per_minute": 3, "login_lockout_s": 600})
    with server.client_from("127.0.0.2") as elsewhere:
        for _ in range(3):
            elsewhere.post("/v1/token", data={"username": "ivy", "password": "forgot it, sorry"})
        right = {"username": "ivy", "password": PASSWORD}
        assert elsewhere.post("/v1/token", data=right).status_code == 429
        with server.client() as client:
            refused = client.post("/v1/users/ivy/unlock", headers=server.auth("audrey"))
            assert refused.status_code == 403
            missing = client.post("/v1/users/nobody/unlock", headers=server.auth("adam"))
            assert missing.status_code == 404
            unlocked = client.post("/v1/users/ivy/unlock", headers=server.auth("adam"))
        assert unlocked.status_code == 200 and unlocked.json()["name"] == "ivy"
        assert elsewhere.post("/v1/token", data=right).status_code == 200
    granted = [r for r in _records(server, "unlock_user") if r.outcome == "granted"]
    assert [(r.actor, r.detail) for r in granted] == [
        ("adam", "user ivy unlocked: 1 locked-out client address(es)")
    ]


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(server_factory):
    server = server_factory()
    with server.client() as client:
        # An admin may not change their own role at all...
        own = client.patch(
            "/v1/users/adam", json={"role": "investigator"}, headers=server.auth("adam")
        )
        assert own.status_code == 403 and own.json()["error"] == "self_role_change"
        client.post(
            "/v1/users",
            json={"name": "alma", "role": "admin", "password": PASSWORD},
            headers=server.auth("adam"),
        )
        alma = server.auth("alma")
        # ...another admin may, while one enabled admin remains.
        demoted = client.patch("/v1/users/adam", json={"role": "auditor"}, headers=alma)
        assert demoted.status_code == 200 and demoted.json()["role"] == "auditor"
        last = client.patch("/v1/users/alma", json={"disabled": True}, headers=alma)
        assert last.status_code == 409 and last.json()["error"] == "last_admin"
        assert client.get("/v1/me", headers=alma).json()["role"] == "admin"
    refusals = [r for r in _records(server, "update_user") if r.outcome == "refused"]
    assert [r.detail.split(":")[0] for r in refusals] == ["403 self_role_change", "409 last_admin"]


def _chunked(client, path: str, body: bytes, headers: dict):
    """POST ``body`` as a chunked stream (no Content-Length), as a streaming client sends it."""

    def chunks():
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    request = client.build_request("POST", path, content=chunks(), headers=headers)
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    return client.send(request)


def test_oversized_chunked_json_body_413_and_audited(live):
    body = json.dumps({"name": "bob", "role": "admin", "password": "x" * 70_000}).encode()
    headers = {**live.auth("adam"), "Content-Type": "application/json"}
    with live.client() as client:
        response = _chunked(client, "/v1/users", body, headers)
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "upload_too_large"
    assert response.json()["limit_bytes"] == SMALL_BODY_LIMIT
    record = live.services.audit_log.records(limit=10_000)[-1]
    assert (record.actor, record.action, record.outcome) == (
        "unverified:adam",
        "oversized_request",
        "refused",
    )
    assert "413 upload_too_large" in record.detail and "POST /v1/users" in record.detail
    assert live.services.users.get("bob") is None


def test_chunked_json_body_within_the_limit_is_served(live):
    body = json.dumps({"name": "chuck", "role": "auditor", "password": PASSWORD}).encode()
    headers = {**live.auth("adam"), "Content-Type": "application/json"}
    with live.client() as client:
        response = _chunked(client, "/v1/users", body, headers)
    assert response.status_code == 201 and response.json()["name"] == "chuck"


def test_openapi_password_min_length_is_the_service_rule(live, server_factory):
    for server, minimum in ((live, 12), (server_factory(auth={"min_password_length": 20}), 20)):
        assert server.services.passwords.min_length == minimum
        with server.client() as client:
            schemas = client.get("/openapi.json").json()["components"]["schemas"]
            create = schemas["UserCreate"]["properties"]["password"]
            update = schemas["UserUpdate"]["properties"]["password"]["anyOf"]
            assert create["minLength"] == minimum
            assert [v["minLength"] for v in update if v.get("type") == "string"] == [minimum]
            headers = server.auth("adam")
            for length, status in ((1, 422), (minimum - 1, 422), (minimum, 201)):
                response = client.post(
                    "/v1/users",
                    json={"name": f"p{length}", "role": "auditor", "password": "p" * length},
                    headers=headers,
                )
                assert response.status_code == status, (minimum, length, response.text)
