"""Sealed faces through the real app over real HTTP: a frame's and a clip job's faces come back
exactly with the authority's keys, the response, report and audit record say per face which
method and why, and a payload that does not open is a typed 422, audited."""

from __future__ import annotations

import numpy as np
import pytest

from authority_service.media import decode_png, encode_png
from shared.geometry import crop
from shared.video_io import read_frames
from tests.authority_service.conftest import (
    CAMERA_ID,
    CAMERA_KEY,
    assert_no_internals,
    reason,
    wait_for_job,
)
from tests.authority_service.edge_role import public_frames, synthetic_frames
from tests.authority_service.sealing import (
    BOX_A,
    BOX_B,
    BOX_C,
    LOSSLESS_SIZE,
    NO_PAYLOAD_FRAME,
    SEALED_BOXES,
    flipped,
    key_pair,
    lossless_sealed_clip,
    payload,
    reseal,
)
from tests.toy_models import TOY_MODEL_ID


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """(new, old): the current key and the one rotated out of the cameras."""
    return key_pair(tmp_path_factory.mktemp("new")), key_pair(tmp_path_factory.mktemp("old"))


@pytest.fixture(scope="module")
def sealed_clip(models_dir, keys, tmp_path_factory):
    new, old = keys
    out = tmp_path_factory.mktemp("clip") / "evidence.mkv"
    return lossless_sealed_clip(models_dir / TOY_MODEL_ID, out, new.public, old.public)


@pytest.fixture(scope="module")
def keyed(servers, keys):
    return servers("keyed", keys)


def _frame(live, png: bytes):
    with live.client() as client:
        return client.post(
            "/v1/frames:reconstruct",
            files={"frame": ("f.png", png, "image/png")},
            data=reason(),
            headers=live.auth("ivy"),
        )


def _job(live, clip: bytes):
    headers = live.auth("ivy")
    with live.client() as client:
        accepted = client.post(
            "/v1/reconstructions",
            files={"clip": ("clip.mkv", clip, "application/octet-stream")},
            data=reason(),
            headers=headers,
        )
        assert accepted.status_code == 202, accepted.text
        job = wait_for_job(client, accepted.json()["id"], headers)
        result = client.get(f"/v1/reconstructions/{job['id']}/result", headers=headers)
    return job, result


def _audit_of(live, job_id: str):
    """The record of how the job ended."""
    (record,) = [
        r
        for r in live.services.audit_log.records(limit=10_000)
        if r.job_id == job_id and r.action == "reconstruct_clip" and r.outcome != "granted"
    ]
    return record


def test_frame_faces_come_back_exactly_and_the_headers_and_audit_say_how(keyed, keys, sealed_clip):
    clip, originals = sealed_clip
    new, _ = keys
    response = _frame(keyed, encode_png(next(iter(read_frames(clip))).rgb))
    assert response.status_code == 200, response.text
    rgb = decode_png(response.content)
    for box in (BOX_A, BOX_B):
        np.testing.assert_array_equal(crop(rgb, box), crop(originals[0], box))
    headers = response.headers
    assert (headers["x-uunet-faces-sealed"], headers["x-uunet-faces-ud"]) == ("2", "1")
    assert headers["x-uunet-ud-reasons"] == "not_in_payload=1"
    assert headers["x-uunet-sealing-key-ids"] == new.key_id
    record = keyed.services.audit_log.records(limit=10_000)[-1]
    assert str(record.seq) == headers["x-uunet-audit-seq"] and record.outcome == "granted"
    assert f"faces: 2 sealed (key {new.key_id}), 1 ud (not_in_payload 1)" in record.detail


def test_clip_job_report_and_audit_say_which_faces_were_sealed_and_why_not(
    keyed, keys, sealed_clip, tmp_path
):
    clip, originals = sealed_clip
    new, old = keys
    job, result = _job(keyed, clip.read_bytes())
    assert job["status"] == "succeeded", job
    methods = job["report"]["faces_by_method"]
    assert (methods["sealed"], methods["ud"]) == (6, 6)
    assert methods["ud_reasons"] == {"not_in_payload": 3, "no_payload": 3}
    assert methods["key_ids"] == [new.key_id, old.key_id] and methods["faces_omitted"] == 0
    assert methods["faces"][0] == {"frame": 0, "box": 0, "method": "sealed", "codec": "png"}
    (tmp_path / "result.mp4").write_bytes(result.content)
    for frame in read_frames(tmp_path / "result.mp4"):
        if frame.index != 2:  # frame 2 carries no payload
            for box in (BOX_A, BOX_B):
                np.testing.assert_array_equal(
                    crop(frame.rgb, box), crop(originals[frame.index], box)
                )
    detail = _audit_of(keyed, job["id"]).detail
    assert f"faces: 6 sealed (key {new.key_id}, {old.key_id}), 6 ud" in detail
    assert "(no_payload 3, not_in_payload 3)" in detail


def test_without_the_key_faces_go_through_ud_reported_and_audited_key_not_held(
    servers, keys, sealed_clip
):
    clip, _ = sealed_clip
    new, old = keys
    keyless = servers("keyless")
    job, _ = _job(keyless, clip.read_bytes())
    assert job["status"] == "succeeded", job
    methods = job["report"]["faces_by_method"]
    assert methods["sealed"] == 0 and methods["ud_reasons"]["key_not_held"] == 9
    assert methods["missing_key_ids"] == [new.key_id, old.key_id]
    detail = _audit_of(keyless, job["id"]).detail
    assert "key_not_held 9" in detail and f"sealed to keys not held: {new.key_id}" in detail
    # With sealing.on_key_not_held: error the same clip is refused, naming the keys.
    strict = servers("strict", [new], sealing={"on_key_not_held": "error"})
    job, result = _job(strict, clip.read_bytes())
    assert job["status"] == "failed" and job["error"]["error"] == "sealing_key_not_held"
    assert result.status_code == 422 and result.json()["error"] == "sealing_key_not_held"
    record = _audit_of(strict, job["id"])
    assert record.outcome == "refused" and old.key_id in record.detail


def test_a_payload_that_does_not_open_is_a_typed_422_and_audited(keyed, keys, models_dir):
    new, _ = keys
    original = synthetic_frames(1, *LOSSLESS_SIZE)[0]
    public = next(
        public_frames(
            [original],
            lambda i, f: SEALED_BOXES,
            models_dir / TOY_MODEL_ID,
            camera_id=CAMERA_ID,
            key=CAMERA_KEY,
        )
    ).rgb
    damaged = reseal(public, flipped(payload(original, SEALED_BOXES, 5, [new.public])))
    response = _frame(keyed, encode_png(damaged))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "sealed_faces_invalid" and body["reason"] == "forged"
    assert body["field"] == "mac"
    assert_no_internals(body)
    record = keyed.services.audit_log.records(limit=10_000)[-1]
    assert record.outcome == "refused" and "sealed_faces_invalid" in record.detail


def test_face_data_says_per_frame_which_faces_were_sealed_and_why_the_others_not(
    keyed, sealed_clip
):
    clip, _ = sealed_clip
    job, _ = _job(keyed, clip.read_bytes())
    with keyed.client() as client:
        response = client.get(f"/v1/reconstructions/{job['id']}/faces", headers=keyed.auth("ivy"))
    assert response.status_code == 200, response.text
    faces = response.json()
    methods = job["report"]["faces_by_method"]
    assert (faces["sealed"], faces["ud"], faces["ud_reasons"]) == (
        methods["sealed"],
        methods["ud"],
        methods["ud_reasons"],
    )
    for frame in faces["frames"]:
        how = [(b["method"], b.get("codec") or b.get("reason")) for b in frame["boxes"]]
        if frame["index"] == NO_PAYLOAD_FRAME:
            assert how == [("ud", "no_payload")] * 3
        else:
            assert how == [("sealed", "png"), ("sealed", "png"), ("ud", "not_in_payload")]
        assert [(b["x"], b["y"]) for b in frame["boxes"]] == [
            (b.x, b.y) for b in (BOX_A, BOX_B, BOX_C)
        ]
