"""/v1/audit over real HTTP: auditors only; the chain check fails once a record is edited."""

from __future__ import annotations

from tests.authority_service.conftest import PASSWORD
from tests.authority_service.tamper import Raw


def test_auditor_pages_through_the_log_and_others_get_403(live):
    with live.client() as client:
        for _ in range(3):
            client.post("/v1/token", data={"username": "ivy", "password": "wrong" * 3})
        first = client.get("/v1/audit", params={"limit": 2}, headers=live.auth("audrey"))
        assert first.status_code == 200
        page = first.json()
        assert len(page["records"]) == 2 and page["next_after_seq"] == 2
        second = client.get(
            "/v1/audit", params={"after_seq": 2, "limit": 2}, headers=live.auth("audrey")
        ).json()
        assert [r["seq"] for r in second["records"]] == [3, 4]
        assert second["records"][0]["prev_hash"] == page["records"][1]["hash"]
        by_actor = client.get(
            "/v1/audit", params={"actor": "ivy", "limit": 1000}, headers=live.auth("audrey")
        ).json()["records"]
        assert by_actor and all(r["actor"] == "ivy" for r in by_actor)
        for user in ("ivy", "adam"):
            assert client.get("/v1/audit", headers=live.auth(user)).status_code == 403
            assert client.get("/v1/audit/verify", headers=live.auth(user)).status_code == 403


def test_verify_passes_then_fails_after_a_record_is_edited_in_sqlite(live):
    with live.client() as client:
        client.post("/v1/token", data={"username": "ivy", "password": PASSWORD})
        ok = client.get("/v1/audit/verify", headers=live.auth("audrey")).json()
        assert ok["valid"] is True and ok["problems"] == [] and ok["anchor_seq"] >= 1
        Raw(live.services.db).execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
        broken = client.get("/v1/audit/verify", headers=live.auth("audrey")).json()
        metrics = client.get("/metrics").text
    assert broken["valid"] is False
    assert broken["problems"] == [
        {"seq": 2, "problem": "record content does not match its hash (edited)"}
    ]
    assert "uunet_authority_audit_chain_valid 0.0" in metrics
