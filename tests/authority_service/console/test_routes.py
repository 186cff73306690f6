"""The console's pages over plain HTTP: each does what its ``/v1`` route does (the same job,
checks, refusals and audit records), shown as a page."""

from __future__ import annotations

import re

import numpy as np

from authority_service.media import decode_png
from shared.video_io import read_frames
from tests.authority_service.conftest import reason, wait_for_job
from tests.authority_service.console.client import JSON, ConsoleClient, main_text


def _records(live, **filters):
    return live.services.audit_log.records(limit=100_000, **filters)


def _submit(client: ConsoleClient, clip, case_id: str):
    with open(clip, "rb") as handle:
        return client.upload(
            "/console/requests", {"clip": (clip.name, handle.read())}, reason(case_id)
        )


def test_a_clip_request_runs_the_api_job_and_its_pages_show_it(live, evidence_clip):
    with ConsoleClient(live) as ivy:
        ivy.sign_in("ivy")
        submitted = _submit(ivy, evidence_clip, "CASE-CONSOLE-1")
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()
        with live.client() as api:
            done = wait_for_job(api, job["id"], live.auth("ivy"))
            exact = api.get(f"/v1/reconstructions/{job['id']}/result", headers=live.auth("ivy"))
        assert done["status"] == "succeeded"
        state = ivy.get(f"/console/jobs/{job['id']}/state", headers=JSON).json()
        assert state == done
        page = main_text(ivy.get(f"/console/jobs/{job['id']}").text)
        assert "succeeded" in page and "CASE-CONSOLE-1" in page and "Open the player" in page
        home = main_text(ivy.get("/console/").text)
        assert job["id"] in home
        download = ivy.get(f"/console/jobs/{job['id']}/result")
    assert download.status_code == 200 and download.content == exact.content
    assert download.headers["cache-control"] == "no-store"
    actions = [(r.action, r.outcome) for r in _records(live, case_id="CASE-CONSOLE-1")]
    assert actions == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "completed"),
        ("download_result", "granted"),
        ("download_result", "granted"),
    ]


def test_another_users_job_does_not_exist_in_the_console_either(live, evidence_clip):
    with live.client() as api, open(evidence_clip, "rb") as handle:
        job = api.post(
            "/v1/reconstructions",
            files={"clip": ("c.mkv", handle.read())},
            data=reason("CASE-OTHER"),
            headers=live.auth("ivy"),
        ).json()
    ivy = live.services.users.get("ivy")
    live.services.users.add("iris", ivy.role, ivy.password_hash)  # another investigator
    with ConsoleClient(live) as iris:
        iris.sign_in("iris")
        for path in ("", "/state", "/player", "/result", "/faces", "/media/result.mp4"):
            response = iris.get(f"/console/jobs/{job['id']}{path}")
            assert response.status_code == 404, (path, response.text)
            assert "not_found" in response.text


def test_the_picked_frame_is_the_clips_exact_frame_and_reverses_as_the_api_does(
    live, evidence_clip
):
    clip = evidence_clip.read_bytes()
    with ConsoleClient(live) as ivy:
        ivy.sign_in("ivy")
        picked = ivy.upload("/console/frames/extract", {"clip": ("c.mkv", clip)}, {"frame": "3"})
        beyond = ivy.upload("/console/frames/extract", {"clip": ("c.mkv", clip)}, {"frame": "99"})
        reversed_ = ivy.upload(
            "/console/frames", {"frame": ("f.png", picked.content)}, reason("CASE-FRAME-1")
        )
    assert picked.status_code == 200 and picked.headers["x-uunet-frames"] == "12"
    original = next(f.rgb for f in read_frames(evidence_clip) if f.index == 3)
    np.testing.assert_array_equal(decode_png(picked.content), original)  # bit-exact, LSBs too
    assert beyond.status_code == 422 and beyond.json()["field"] == "frame"
    with live.client() as api:
        by_api = api.post(
            "/v1/frames:reconstruct",
            files={"frame": ("f.png", picked.content)},
            data=reason("CASE-FRAME-1"),
            headers=live.auth("ivy"),
        )
    assert reversed_.status_code == 200 and reversed_.content == by_api.content
    assert reversed_.headers["x-uunet-faces"] == by_api.headers["x-uunet-faces"] != "0"
    actions = [(r.action, r.outcome, r.actor) for r in _records(live, case_id="CASE-FRAME-1")]
    assert actions == [("reconstruct_frame", "granted", "ivy")] * 2


def test_approvals_inbox_decides_through_the_api_rules(server_factory, evidence_clip):
    live = server_factory(jobs={"require_approval": True})
    with ConsoleClient(live) as ivy, ConsoleClient(live) as april:
        ivy.sign_in("ivy")
        job = _submit(ivy, evidence_clip, "CASE-DUAL-1").json()
        assert job["status"] == "pending_approval"
        page = main_text(ivy.get(f"/console/jobs/{job['id']}").text)
        assert "waiting for a second user" in page
        player = main_text(ivy.get(f"/console/jobs/{job['id']}/player").text)
        assert "job_pending_approval" in player
        refused = ivy.post_form(f"/console/approvals/{job['id']}/approve", {"reason": "x" * 20})
        assert refused.status_code == 403 and "permission_denied" in main_text(refused.text)
        april.sign_in("april")
        inbox = april.get("/console/approvals")
        assert job["id"] in inbox.text and "CASE-DUAL-1" in inbox.text
        short = april.post_form(f"/console/approvals/{job['id']}/approve", {"reason": "ok"})
        assert short.status_code == 422 and "invalid_request" in main_text(short.text)
        approved = april.post_form(
            f"/console/approvals/{job['id']}/approve", {"reason": "Case file checked by me."}
        )
        assert approved.status_code == 303 and approved.headers["location"] == "/console/approvals"
        after = main_text(april.get("/console/approvals").text)
        assert f"Job {job['id']} (case CASE-DUAL-1, ivy) approved" in after
        again = april.post_form(
            f"/console/approvals/{job['id']}/refuse", {"reason": "Changed my mind, sorry."}
        )
        assert again.status_code == 409 and "job_not_pending" in main_text(again.text)
    records = [(r.actor, r.action, r.outcome) for r in _records(live, case_id="CASE-DUAL-1")]
    assert records[:5] == [
        ("ivy", "reconstruct_clip", "pending"),
        ("ivy", "approve_job", "refused"),
        ("april", "approve_job", "refused"),
        ("april", "approve_job", "granted"),
        ("april", "refuse_job", "refused"),
    ]
    approval = _records(live, case_id="CASE-DUAL-1", actor="april", outcome="granted")[0]
    assert approval.justification == "Case file checked by me."


def test_audit_pages_filter_show_one_record_and_verify_the_chain(live):
    with ConsoleClient(live) as ivy, ConsoleClient(live) as audrey:
        ivy.sign_in("ivy", "a wrong password!")
        audrey.sign_in("audrey")
        refused = audrey.get("/console/audit", params={"actor": "ivy", "outcome": "refused"})
        rows = re.findall(r'<tr class="outcome-(\w+)">', refused.text)
        assert rows and set(rows) == {"refused"}
        future = audrey.get("/console/audit", params={"since": "2999-01-01T00:00"})
        assert "No records match." in main_text(future.text)
        bad = audrey.get("/console/audit", params={"since": "yesterday"})
        assert bad.status_code == 422 and "invalid_request" in main_text(bad.text)
        seq = _records(live, actor="ivy", outcome="refused")[-1].seq
        entry = main_text(audrey.get(f"/console/audit/{seq}").text)
        assert "invalid_credentials" in entry and "prev_hash" in entry
        assert audrey.get("/console/audit/999999999").status_code == 404
        verify = audrey.get("/console/audit/verify")
        assert 'data-valid="true"' in verify.text and "The chain is valid" in verify.text
    actions = [r.action for r in _records(live, actor="audrey")]
    assert actions[-5:] == ["read_audit"] * 4 + ["verify_audit"]  # every read audited, as the API's


def test_users_page_adds_disables_and_keeps_the_last_admin(live):
    with ConsoleClient(live) as adam:
        adam.sign_in("adam")
        added = adam.post_form(
            "/console/users",
            {"name": "carol", "role": "auditor", "password": "a long enough password"},
        )
        assert added.status_code == 303
        assert "User carol added as auditor." in main_text(adam.get("/console/users").text)
        weak = adam.post_form("/console/users", {"name": "dan", "role": "auditor", "password": "x"})
        assert weak.status_code == 422 and "password" in main_text(weak.text)
        disabled = adam.post_form("/console/users/carol", {"change": "disable"})
        assert disabled.status_code == 303 and live.services.users.get("carol").disabled
        last = adam.post_form("/console/users/adam", {"change": "disable"})
        assert last.status_code == 409 and "last_admin" in main_text(last.text)
    assert live.services.users.get("dan") is None and not live.services.users.get("adam").disabled
    actions = [(r.action, r.outcome) for r in _records(live, actor="adam")][-5:]
    assert actions == [
        ("add_user", "granted"),
        ("list_users", "granted"),
        ("add_user", "refused"),
        ("update_user", "granted"),
        ("update_user", "refused"),
    ]


def test_console_scripts_get_the_api_error_body(live):
    with ConsoleClient(live) as ivy:
        ivy.sign_in("ivy")
        response = ivy.get("/console/jobs/" + "a" * 24 + "/state", headers=JSON)
        malformed = ivy.get("/console/jobs/not-a-job/state", headers=JSON)
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert malformed.status_code == 422 and malformed.json()["error"] == "invalid_request"
