"""Dual control over real HTTP (``jobs.require_approval``): a reversal waits for a second user
with the role approver; the requester can never decide it; every decision and refusal audited;
a frame becomes a job whose PNG comes only after approval."""

from __future__ import annotations

import time

import numpy as np
import pytest

from authority_service.media import decode_png, encode_png
from shared.geometry import crop
from shared.video_io import read_frames
from tests.authority_service.conftest import (
    SYNTHETIC_BOXES,
    reason,
    settings_for,
    start_server,
    wait_for_job,
)
from tests.authority_service.edge_role import synthetic_frames

JOBS = "/v1/reconstructions"
APPROVALS = "/v1/approvals"
WHY = "Case file reviewed: the warrant covers this clip."


@pytest.fixture(scope="module")
def dual(tmp_path_factory, models_dir):
    """A live server whose reversals need an approver."""
    settings = settings_for(
        tmp_path_factory.mktemp("dual"), models_dir, jobs={"require_approval": True}
    )
    server = start_server(settings)
    yield server
    server.stop()


def _submit_clip(client, clip, headers):
    return client.post(
        JOBS,
        files={"clip": ("clip.mkv", clip.read_bytes(), "application/octet-stream")},
        data=reason(),
        headers=headers,
    )


def _decide(client, job_id, verb, headers, why=WHY):
    return client.post(f"{APPROVALS}/{job_id}/{verb}", json={"reason": why}, headers=headers)


def _trail(server, job_id):
    return [
        (r.actor, r.action, r.outcome)
        for r in server.services.audit_log.records(limit=10_000)
        if r.job_id == job_id
    ]


def _records(server, job_id, action):
    return [
        r
        for r in server.services.audit_log.records(limit=10_000)
        if r.job_id == job_id and r.action == action
    ]


def _pending_gauge(client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("uunet_authority_jobs_pending_approval "):
            return float(line.split()[1])
    raise AssertionError("no pending-approval gauge in /metrics")


def _relogin(server, user):
    server.tokens.pop(user, None)
    return server.auth(user)


def _set_role(client, server, user, role):
    response = client.patch(f"/v1/users/{user}", json={"role": role}, headers=server.auth("adam"))
    assert response.status_code == 200, response.text
    return _relogin(server, user)


def test_job_runs_only_after_a_second_users_approval_never_the_requesters(
    server_factory, evidence_clip, tmp_path
):
    server = server_factory(jobs={"require_approval": True})
    ivy = server.auth("ivy")
    with server.client() as client:
        accepted = _submit_clip(client, evidence_clip, ivy)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        assert accepted.json()["status"] == "pending_approval"
        assert accepted.json()["approval"] == {
            "decision": None,
            "decided_by": None,
            "decided_at": None,
            "reason": None,
        }
        time.sleep(1.5)  # an idle worker would have finished the 12 frames by now
        waiting = client.get(f"{JOBS}/{job_id}", headers=ivy).json()
        assert waiting["status"] == "pending_approval" and waiting["started_at"] is None
        assert waiting["progress"]["frames_done"] == 0 and waiting["result_url"] is None
        no_result = client.get(f"{JOBS}/{job_id}/result", headers=ivy)
        assert no_result.status_code == 409
        assert no_result.json()["error"] == "job_pending_approval"
        assert not list(server.services.jobs.results_dir.iterdir())
        assert _pending_gauge(client) == 1

        listed = client.get(APPROVALS, headers=server.auth("april"))
        assert listed.status_code == 200
        assert [(j["id"], j["owner"], j["kind"]) for j in listed.json()] == [
            (job_id, "ivy", "clip")
        ]
        assert listed.json()[0]["justification"] == reason()["justification"]

        # The requester as an investigator: not an approver.
        own = _decide(client, job_id, "approve", ivy, "I approve my own request, trust me.")
        assert own.status_code == 403 and own.json()["error"] == "permission_denied"
        # Made an approver later, still never on their own job.
        ivy_as_approver = _set_role(client, server, "ivy", "approver")
        own = _decide(client, job_id, "approve", ivy_as_approver, "Now I am an approver, so.")
        assert own.status_code == 403 and own.json()["error"] == "self_approval"
        own_refusal = _decide(client, job_id, "refuse", ivy_as_approver)
        assert own_refusal.status_code == 403 and own_refusal.json()["error"] == "self_approval"
        ivy = _set_role(client, server, "ivy", "investigator")
        assert client.get(f"{JOBS}/{job_id}", headers=ivy).json()["status"] == "pending_approval"

        approved = _decide(client, job_id, "approve", server.auth("april"))
        assert approved.status_code == 200, approved.text
        assert approved.json()["approval"]["decision"] == "approved"
        assert approved.json()["approval"]["decided_by"] == "april"
        assert approved.json()["approval"]["reason"] == WHY
        done = wait_for_job(client, job_id, ivy)
        assert done["status"] == "succeeded", done
        assert done["approval"]["decided_by"] == "april" and done["approval"]["decided_at"]
        assert _pending_gauge(client) == 0
        result = client.get(done["result_url"], headers=ivy)
    assert result.status_code == 200
    out = tmp_path / "result.mp4"
    out.write_bytes(result.content)
    for frame, original in zip(read_frames(out), synthetic_frames(12), strict=True):
        box = SYNTHETIC_BOXES[0]
        np.testing.assert_array_equal(crop(frame.rgb, box), crop(original, box))

    assert _trail(server, job_id) == [
        ("ivy", "reconstruct_clip", "pending"),
        ("ivy", "download_result", "refused"),  # the 409 while pending
        ("ivy", "approve_job", "refused"),
        ("ivy", "approve_job", "refused"),
        ("ivy", "refuse_job", "refused"),
        ("april", "approve_job", "granted"),
        ("ivy", "reconstruct_clip", "completed"),
        ("ivy", "download_result", "granted"),
    ]
    refusals = _records(server, job_id, "approve_job")
    assert "403 permission_denied" in refusals[0].detail
    assert "403 self_approval" in refusals[1].detail and refusals[1].role == "approver"
    assert refusals[1].justification == "Now I am an approver, so."
    grant = refusals[2]
    assert (grant.role, grant.justification, grant.case_id) == ("approver", WHY, "CASE-2024-0042")
    final = _records(server, job_id, "reconstruct_clip")[-1]
    assert "approved by april" in final.detail
    assert server.services.audit_log.verify().valid


def test_refused_job_ends_refused_its_upload_deleted_and_no_result(dual, evidence_clip):
    with dual.client() as client:
        job_id = _submit_clip(client, evidence_clip, dual.auth("ivy")).json()["id"]
        assert dual.services.jobs.upload_path(job_id).is_file()
        refused = _decide(client, job_id, "refuse", dual.auth("april"), "No warrant covers it.")
        assert refused.status_code == 200, refused.text
        body = client.get(f"{JOBS}/{job_id}", headers=dual.auth("ivy")).json()
        result = client.get(f"{JOBS}/{job_id}/result", headers=dual.auth("ivy"))
        listed = client.get(APPROVALS, headers=dual.auth("april")).json()
    assert body["status"] == "refused" and body["finished_at"] and body["result_url"] is None
    assert body["approval"]["decision"] == "refused" and body["approval"]["decided_by"] == "april"
    assert body["approval"]["reason"] == "No warrant covers it."
    assert not dual.services.jobs.upload_path(job_id).exists()
    assert result.status_code == 403 and result.json()["error"] == "job_refused"
    assert job_id not in {j["id"] for j in listed}
    time.sleep(0.5)
    assert dual.services.jobs.store.get(job_id).started_at is None  # never ran
    assert _trail(dual, job_id) == [
        ("ivy", "reconstruct_clip", "pending"),
        ("april", "refuse_job", "granted"),
        ("ivy", "download_result", "refused"),
    ]
    assert _records(dual, job_id, "refuse_job")[0].justification == "No warrant covers it."


def test_deciding_a_job_that_is_not_pending_is_409_and_audited(dual, evidence_clip):
    april = dual.auth("april")
    with dual.client() as client:
        job_id = _submit_clip(client, evidence_clip, dual.auth("ivy")).json()["id"]
        assert _decide(client, job_id, "approve", april).status_code == 200
        again = _decide(client, job_id, "approve", april)
        late_refusal = _decide(client, job_id, "refuse", april)
        wait_for_job(client, job_id, dual.auth("ivy"))
        unknown = _decide(client, "f" * 24, "approve", april)
    assert again.status_code == 409 and again.json()["error"] == "job_not_pending"
    assert again.json()["job_status"] in ("queued", "running", "succeeded")
    assert late_refusal.status_code == 409 and late_refusal.json()["error"] == "job_not_pending"
    assert unknown.status_code == 404
    refusals = [r for r in _records(dual, job_id, "approve_job") if r.outcome == "refused"]
    refusals += _records(dual, job_id, "refuse_job")
    assert len(refusals) == 2 and all("409 job_not_pending" in r.detail for r in refusals)
    assert all(r.actor == "april" and r.justification == WHY for r in refusals)


def test_other_roles_cannot_list_or_decide_and_are_audited_with_the_job(dual, evidence_clip):
    with dual.client() as client:
        job_id = _submit_clip(client, evidence_clip, dual.auth("ivy")).json()["id"]
        for user in ("ivy", "audrey", "adam"):
            listing = client.get(APPROVALS, headers=dual.auth(user))
            assert listing.status_code == 403, user
            decided = _decide(client, job_id, "approve", dual.auth(user))
            assert decided.status_code == 403 and decided.json()["error"] == "permission_denied"
        assert _decide(client, job_id, "approve", {}).status_code == 401
        no_reason = client.post(f"{APPROVALS}/{job_id}/refuse", json={}, headers=dual.auth("ivy"))
        assert no_reason.status_code == 403  # the role is checked before the body
        # An admin cannot make itself the second pair of eyes.
        promoted = client.patch(
            "/v1/users/adam", json={"role": "approver"}, headers=dual.auth("adam")
        )
        assert promoted.status_code == 403 and promoted.json()["error"] == "self_role_change"
        status = client.get(f"{JOBS}/{job_id}", headers=dual.auth("ivy")).json()["status"]
    assert status == "pending_approval"
    assert [
        (r.actor, r.outcome, r.justification) for r in _records(dual, job_id, "refuse_job")
    ] == [("ivy", "refused", None)]
    refused = _records(dual, job_id, "approve_job")
    assert [(r.actor, r.outcome) for r in refused] == [
        ("ivy", "refused"),
        ("audrey", "refused"),
        ("adam", "refused"),
    ]
    assert all(r.justification == WHY and r.case_id == "CASE-2024-0042" for r in refused)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": "too short"},
        {"reason": "x" * 1001},
        {"reason": "first line\nINFO forged second line"},
        {"reason": "a line\u2028and what looks like another"},
        {"reason": WHY, "extra": 1},
    ],
)
def test_a_decision_needs_one_bounded_line_of_reason(dual, evidence_clip, body):
    with dual.client() as client:
        job_id = _submit_clip(client, evidence_clip, dual.auth("ivy")).json()["id"]
        response = client.post(
            f"{APPROVALS}/{job_id}/approve", json=body, headers=dual.auth("april")
        )
        status = client.get(f"{JOBS}/{job_id}", headers=dual.auth("ivy")).json()["status"]
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"
    assert status == "pending_approval"
    record = dual.services.audit_log.records(limit=10_000)[-1]
    assert (record.actor, record.action, record.outcome) == ("april", "approve_job", "refused")


def test_frame_needs_approval_then_the_requester_fetches_its_png(dual, evidence_clip):
    public = encode_png(next(iter(read_frames(evidence_clip))).rgb)
    ivy = dual.auth("ivy")
    with dual.client() as client:
        response = client.post(
            "/v1/frames:reconstruct",
            files={"frame": ("f.png", public, "image/png")},
            data=reason(),
            headers=ivy,
        )
        assert response.status_code == 202, response.text
        assert response.headers["content-type"] == "application/json"
        job = response.json()
        assert (job["kind"], job["status"]) == ("frame", "pending_approval")
        assert response.headers["location"] == f"{JOBS}/{job['id']}"
        early = client.get(f"{JOBS}/{job['id']}/result", headers=ivy)
        assert early.status_code == 409 and early.json()["error"] == "job_pending_approval"
        not_a_png = client.post(
            "/v1/frames:reconstruct",
            files={"frame": ("f.png", b"not a png at all", "image/png")},
            data=reason(),
            headers=ivy,
        )
        assert not_a_png.status_code == 415  # refused at once, never put before an approver
        assert _decide(client, job["id"], "approve", dual.auth("april")).status_code == 200
        done = wait_for_job(client, job["id"], ivy)
        assert done["status"] == "succeeded", done
        assert done["report"]["faces"] == 3 and done["report"]["verified_frames"] == 1
        result = client.get(done["result_url"], headers=ivy)
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    original = synthetic_frames(12)[0]
    box = SYNTHETIC_BOXES[0]
    np.testing.assert_array_equal(crop(decode_png(result.content), box), crop(original, box))
    assert _trail(dual, job["id"]) == [
        ("ivy", "reconstruct_frame", "pending"),
        ("ivy", "download_result", "refused"),
        ("april", "approve_job", "granted"),
        ("ivy", "reconstruct_frame", "completed"),
        ("ivy", "download_result", "granted"),
    ]
    assert "approved by april" in _records(dual, job["id"], "reconstruct_frame")[-1].detail


def test_without_the_setting_nothing_waits_and_jobs_show_no_approval(live, evidence_clip):
    with live.client() as client:
        accepted = _submit_clip(client, evidence_clip, live.auth("ivy"))
        job = wait_for_job(client, accepted.json()["id"], live.auth("ivy"))
        decided = _decide(client, job["id"], "approve", live.auth("april"))
    assert job["status"] == "succeeded" and job["approval"] is None
    assert decided.status_code == 409 and decided.json()["error"] == "job_not_pending"
