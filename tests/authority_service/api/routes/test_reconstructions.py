"""/v1/reconstructions over real HTTP: submit, poll, download; every bad clip a typed 4xx, audited;
jobs and results survive a restart and expire."""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta, timezone

import av
import numpy as np
import pytest

from authority_service.media import MIN_FRAME_SIDE
from shared.geometry import Box, crop
from shared.video_io import LosslessWriter, read_frames
from tests.authority_service.conftest import (
    CAMERA_ID,
    CAMERA_KEY,
    SYNTHETIC_BOXES,
    assert_no_internals,
    reason,
    unknown_camera_clip,
    wait_for_job,
)
from tests.authority_service.edge_role import deidentify_clip, synthetic_frames
from tests.toy_models import TOY_MODEL_ID, write_toy_model_dir

ROUTE = "/v1/reconstructions"


def _submit(client, data: bytes, headers, name="clip.mkv", fields=None):
    return client.post(
        ROUTE,
        files={"clip": (name, data, "application/octet-stream")},
        data=fields or reason(),
        headers=headers,
    )


def _records(live):
    return live.services.audit_log.records(limit=10_000)


def _failed_result(live, client, data: bytes, name="clip.mkv"):
    """Submit, wait for the job to fail, return (job, result response)."""
    headers = live.auth("ivy")
    accepted = _submit(client, data, headers, name)
    assert accepted.status_code == 202, accepted.text
    job = wait_for_job(client, accepted.json()["id"], headers)
    return job, client.get(f"{ROUTE}/{job['id']}/result", headers=headers)


def test_submit_poll_download_and_audit_trail(live, evidence_clip, tmp_path):
    headers = live.auth("ivy")
    with live.client() as client:
        accepted = _submit(client, evidence_clip.read_bytes(), headers)
        assert accepted.status_code == 202
        job_id = accepted.json()["id"]
        assert accepted.headers["location"] == f"{ROUTE}/{job_id}"
        job = wait_for_job(client, job_id, headers)
        assert job["status"] == "succeeded" and job["error"] is None
        assert job["report"]["frames"] == 12 and job["report"]["faces"] == 38
        assert job["progress"] == {"frames_done": 12, "frames_total": 12}
        result = client.get(job["result_url"], headers=headers)
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    assert job["report"]["result_codec"] == "libx264rgb"
    out = tmp_path / "result.mp4"
    out.write_bytes(result.content)
    originals = synthetic_frames(12)
    frames = [f.rgb for f in read_frames(out)]
    assert len(frames) == 12
    for frame, original in zip(frames, originals, strict=True):
        box = SYNTHETIC_BOXES[0]
        np.testing.assert_array_equal(crop(frame, box), crop(original, box))
    trail = [(r.actor, r.action, r.outcome) for r in _records(live) if r.job_id == job_id]
    assert trail == [
        ("ivy", "reconstruct_clip", "granted"),
        ("ivy", "reconstruct_clip", "completed"),
        ("ivy", "download_result", "granted"),
    ]


def test_roles_and_ownership(live, evidence_clip):
    with live.client() as client:
        assert _submit(client, evidence_clip.read_bytes(), {}).status_code == 401
        forbidden = _submit(client, evidence_clip.read_bytes(), live.auth("audrey"))
        assert forbidden.status_code == 403
        accepted = _submit(client, evidence_clip.read_bytes(), live.auth("ivy"))
        job_id = accepted.json()["id"]
        live.services.users.add("ines", live.services.users.get("ivy").role, "$argon2id$x")
        other = live.services.tokens.issue(live.services.users.get("ines"))[0]
        stranger = client.get(f"{ROUTE}/{job_id}", headers={"Authorization": f"Bearer {other}"})
        assert stranger.status_code == 404 and stranger.json()["error"] == "not_found"
        wait_for_job(client, job_id, live.auth("ivy"))
    refused = [r for r in _records(live) if r.outcome == "refused"]
    assert {(r.actor, r.action) for r in refused} >= {
        ("anonymous", "reconstruct_clip"),
        ("audrey", "reconstruct_clip"),
        ("ines", "read_job"),
    }


def test_not_a_video_415_and_truncated_mp4_422_at_submission(live, tmp_path):
    path = tmp_path / "c.mp4"
    with LosslessWriter(path, 64, 48, 10, codec="libx264rgb") as writer:
        for frame in synthetic_frames(5, 64, 48):
            writer.write(frame)
    data = path.read_bytes()
    with live.client() as client:
        text = _submit(client, b"just some text, not a clip\n" * 40, live.auth("ivy"))
        cut = _submit(client, data[: len(data) // 2], live.auth("ivy"), "cut.mp4")
        assert client.get("/healthz").status_code == 200
    assert text.status_code == 415 and text.json()["error"] == "not_a_video"
    assert cut.status_code == 422 and cut.json()["error"] == "corrupt_video"
    last_two = _records(live)[-2:]
    assert [r.outcome for r in last_two] == ["refused", "refused"]
    assert all(r.clip_sha256 and len(r.clip_sha256) == 64 for r in last_two)
    assert not list(live.services.jobs.uploads_dir.iterdir())  # refused uploads are not kept


def test_clip_failures_found_while_running_are_422_on_the_result(live, evidence_clip, tmp_path):
    other_model = write_toy_model_dir(tmp_path / "other", model_id="0badc0de0badc0de")
    unknown = deidentify_clip(
        synthetic_frames(3),
        lambda i, f: [SYNTHETIC_BOXES[0]],
        other_model,
        tmp_path / "unknown.mkv",
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )
    frames = [f.rgb for f in read_frames(evidence_clip)]
    forged_frames = [f.copy() for f in frames]
    forged_frames[4][60, 60] ^= 0x20
    forged = tmp_path / "forged.mkv"
    plain = tmp_path / "plain.mkv"
    for path, content in ((forged, forged_frames), (plain, synthetic_frames(4))):
        with LosslessWriter(path, 320, 240, 15) as writer:
            for frame in content:
                writer.write(frame)
    data = evidence_clip.read_bytes()
    cases = {
        "forged_message": forged.read_bytes(),
        "no_message": plain.read_bytes(),
        "corrupt_video": data[: len(data) * 6 // 10],
        "unknown_model": unknown.read_bytes(),
    }
    with live.client() as client:
        for code, payload in cases.items():
            job, result = _failed_result(live, client, payload)
            assert job["status"] == "failed" and job["error"]["error"] == code
            assert result.status_code == 422 and result.json()["error"] == code
            assert result.json()["job_id"] == job["id"]
            assert job["error"]["detail"]
            finished = [r for r in _records(live) if r.job_id == job["id"]]
            assert [r.outcome for r in finished] == ["granted", "refused", "refused"]
    refusals = {
        code: [r.detail for r in _records(live) if r.detail and r.detail.startswith(code)]
        for code in ("forged_message", "unknown_model")
    }
    assert any("frame 4" in d for d in refusals["forged_message"])
    assert any("frame 0" in d for d in refusals["unknown_model"])


def test_result_of_unfinished_job_409_and_of_expired_job_410(live, evidence_clip):
    store = live.services.jobs.store
    pending = store.create(
        job_id="0" * 24,
        owner="ivy",
        case_id="C-9",
        justification="Pending job for the 409 check.",
        clip_sha256="11" * 32,
        clip_bytes=1,
        frames_total=None,
        ttl_s=60,
    )
    with live.client() as client:
        response = client.get(f"{ROUTE}/{pending.id}/result", headers=live.auth("ivy"))
        assert response.status_code == 409 and response.json()["error"] == "job_not_finished"
        assert response.headers["retry-after"] == "2"
        accepted = _submit(client, evidence_clip.read_bytes(), live.auth("ivy"))
        job = wait_for_job(client, accepted.json()["id"], live.auth("ivy"))
        later = datetime.now(timezone.utc) + timedelta(days=2)
        assert live.services.jobs.sweep(now=later) >= 1
        gone = client.get(f"{ROUTE}/{job['id']}/result", headers=live.auth("ivy"))
        status = client.get(f"{ROUTE}/{job['id']}", headers=live.auth("ivy")).json()
    assert gone.status_code == 410 and gone.json()["error"] == "job_expired"
    assert status["status"] == "expired" and status["result_url"] is None


def test_upload_over_the_limit_413_is_audited_with_the_user(server_factory, evidence_clip):
    server = server_factory(limits={"max_clip_bytes": 64 * 1024})
    with server.client() as client:
        response = _submit(client, evidence_clip.read_bytes(), server.auth("ivy"))
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 413 and response.json()["error"] == "upload_too_large"
    assert response.json()["limit_bytes"] == 64 * 1024
    record = server.services.audit_log.records()[-1]
    assert (record.actor, record.outcome) == ("ivy", "refused") and "413" in record.detail


def test_jobs_and_results_survive_a_restart(server_factory, evidence_clip, tmp_path):
    first = server_factory(tmp_path / "root")
    with first.client() as client:
        accepted = _submit(client, evidence_clip.read_bytes(), first.auth("ivy"))
        job = wait_for_job(client, accepted.json()["id"], first.auth("ivy"))
        before = client.get(job["result_url"], headers=first.auth("ivy")).content
    first.stop()
    second = server_factory(tmp_path / "root")
    with second.client() as client:
        status = client.get(f"{ROUTE}/{job['id']}", headers=second.auth("ivy")).json()
        after = client.get(job["result_url"], headers=second.auth("ivy"))
        verify = client.get("/v1/audit/verify", headers=second.auth("audrey")).json()
    assert status["status"] == "succeeded" and after.status_code == 200
    assert after.content == before
    assert verify["valid"] is True


@pytest.mark.parametrize("missing", ["case_id", "justification", "clip"])
def test_missing_fields_422_name_the_field(live, evidence_clip, missing):
    fields = {k: v for k, v in reason().items() if k != missing}
    files = {} if missing == "clip" else {"clip": ("c.mkv", evidence_clip.read_bytes())}
    with live.client() as client:
        response = client.post(ROUTE, files=files or None, data=fields, headers=live.auth("ivy"))
    assert response.status_code == 422 and response.json()["field"] == missing
    assert _records(live)[-1].outcome == "refused"


def test_clip_of_unknown_camera_is_refused_by_default_and_unverified_when_allowed(
    live, server_factory, models_dir, tmp_path
):
    clip = unknown_camera_clip(models_dir, tmp_path / "unknown-camera.mkv", 3).read_bytes()
    with live.client() as client:
        job, result = _failed_result(live, client, clip)
    assert job["error"]["error"] == "unauthenticated_message"
    assert result.status_code == 422 and result.json()["error"] == "unauthenticated_message"
    lenient = server_factory(messages={"require_authentication": False})
    with lenient.client() as client:
        accepted = _submit(client, clip, lenient.auth("ivy"))
        job = wait_for_job(client, accepted.json()["id"], lenient.auth("ivy"))
    assert job["status"] == "succeeded", job
    assert job["report"]["verified_frames"] == 0 and job["report"]["unverified_frames"] == 3
    completed = [r for r in _records(lenient) if r.job_id == job["id"]][-1]
    assert completed.outcome == "completed" and "3 unverified" in completed.detail


def _plain_clip(path, width: int, height: int, frames: int = 3):
    """A real clip of ``width x height`` (PyAV's FFV1 with its default options: the only
    lossless encoder here that writes a 1-pixel side)."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for frame in synthetic_frames(frames, max(width, 2), max(height, 2)):
            picture = av.VideoFrame.from_ndarray(frame[:height, :width].copy(), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return path


def test_tiny_clip_422_at_submission_and_audited(live, tmp_path):
    tiny = _plain_clip(tmp_path / "1x1.mkv", 1, 1)
    assert [f.rgb.shape for f in read_frames(tiny)] == [(1, 1, 3)] * 3  # a real 1x1 video
    with live.client() as client:
        response = _submit(client, tiny.read_bytes(), live.auth("ivy"))
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "unsupported_frame_size"
    assert (body["width"], body["height"], body["min_side"]) == (1, 1, MIN_FRAME_SIDE)
    record = _records(live)[-1]
    assert record.outcome == "refused" and "unsupported_frame_size" in record.detail
    assert not list(live.services.jobs.uploads_dir.iterdir())


def test_odd_sized_clip_is_reversed_as_ffv1(live, models_dir, tmp_path):
    box = Box(4, 2, 14, 13)
    originals = synthetic_frames(3, 33, 17)
    clip = deidentify_clip(
        originals,
        lambda i, f: [box],
        models_dir / TOY_MODEL_ID,
        tmp_path / "33x17.mkv",
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )
    headers = live.auth("ivy")
    with live.client() as client:
        accepted = _submit(client, clip.read_bytes(), headers)
        assert accepted.status_code == 202, accepted.text
        job = wait_for_job(client, accepted.json()["id"], headers)
        assert job["status"] == "succeeded", job
        result = client.get(job["result_url"], headers=headers)
    assert result.status_code == 200 and result.headers["content-type"] == "video/x-matroska"
    assert job["report"]["result_codec"] == "ffv1" and job["report"]["faces"] == 3
    out = tmp_path / "result.mkv"
    out.write_bytes(result.content)
    assert [f.rgb.shape for f in read_frames(out)] == [(17, 33, 3)] * 3


def test_corrupt_upload_bodies_hide_paths_and_errno_which_the_server_logs(
    live, evidence_clip, tmp_path, caplog
):
    path = tmp_path / "c.mp4"
    with LosslessWriter(path, 64, 48, 10, codec="libx264rgb") as writer:
        for frame in synthetic_frames(5, 64, 48):
            writer.write(frame)
    data = path.read_bytes()
    caplog.set_level(logging.INFO, logger="authority_service")
    with live.client() as client:
        at_submission = _submit(client, data[: len(data) // 2], live.auth("ivy"), "cut.mp4")
        clip = evidence_clip.read_bytes()
        job, while_running = _failed_result(live, client, clip[: len(clip) * 6 // 10])
    assert at_submission.status_code == 422 and at_submission.json()["error"] == "corrupt_video"
    assert while_running.status_code == 422 and job["error"]["error"] == "corrupt_video"
    for body in (at_submission.json(), while_running.json(), job["error"]):
        assert_no_internals(body)
    assert "Errno" in caplog.text and str(live.services.jobs.uploads_dir) in caplog.text


def test_internal_failure_bodies_hide_paths_and_errno_which_the_server_logs(
    server_factory, evidence_clip, caplog
):
    server = server_factory()
    shutil.rmtree(server.services.jobs.results_dir)  # the results folder went missing
    caplog.set_level(logging.INFO, logger="authority_service")
    headers = server.auth("ivy")
    with server.client() as client:
        accepted = _submit(client, evidence_clip.read_bytes(), headers)
        job = wait_for_job(client, accepted.json()["id"], headers)
        result = client.get(f"{ROUTE}/{job['id']}/result", headers=headers)
    assert job["status"] == "failed" and job["error"]["error"] == "internal_error"
    assert result.status_code == 500 and result.json()["error"] == "internal_error"
    for body in (result.json(), job["error"]):
        assert_no_internals(body)
    completed = [r for r in _records(server) if r.job_id == job["id"]][-1]
    assert completed.outcome == "failed" and "/" not in completed.detail
    assert str(server.services.jobs.results_dir) in caplog.text  # the cause, in the log


def test_chunked_upload_over_the_limit_413_is_audited_with_the_user(server_factory, evidence_clip):
    server = server_factory(limits={"max_clip_bytes": 64 * 1024})
    with server.client() as client:
        form = client.build_request(
            "POST", ROUTE, files={"clip": ("c.mkv", evidence_clip.read_bytes())}, data=reason()
        )
        body = form.read()
        request = client.build_request(
            "POST",
            ROUTE,
            content=(body[i : i + 8192] for i in range(0, len(body), 8192)),
            headers={**server.auth("ivy"), "Content-Type": form.headers["content-type"]},
        )
        assert "content-length" not in request.headers  # Transfer-Encoding: chunked
        response = client.send(request)
    assert response.status_code == 413 and response.json()["error"] == "upload_too_large"
    record = server.services.audit_log.records()[-1]
    assert (record.actor, record.action, record.outcome) == ("ivy", "reconstruct_clip", "refused")
