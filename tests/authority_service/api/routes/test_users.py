"""/v1/users over real HTTP: only admins manage users; changes revoke tokens; all audited."""

from __future__ import annotations

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
