"""POST /v1/frames:reconstruct over real HTTP: roles, reasons, bad frames; all audited."""

from __future__ import annotations

import numpy as np
import pytest

from authority_service.media import decode_png, encode_png
from shared import stego
from shared.frame_seal import seal_frame
from shared.geometry import crop
from shared.video_io import read_frames
from tests.authority_service.conftest import (
    CAMERA_ID,
    SYNTHETIC_BOXES,
    reason,
    unknown_camera_clip,
)
from tests.authority_service.edge_role import deidentify_clip, synthetic_frames
from tests.toy_models import TOY_MODEL_ID, write_toy_model_dir

ROUTE = "/v1/frames:reconstruct"


def _post(client, png: bytes, headers, data=None):
    return client.post(
        ROUTE, files={"frame": ("f.png", png, "image/png")}, data=data or reason(), headers=headers
    )


def _last_audit(live):
    return live.services.audit_log.records(limit=10_000)[-1]


@pytest.fixture(scope="module")
def public_png(evidence_clip) -> bytes:
    return encode_png(next(iter(read_frames(evidence_clip))).rgb)


def test_investigator_gets_the_reconstructed_png_and_the_attempt_is_audited(live, public_png):
    original = synthetic_frames(12)[0]
    with live.client() as client:
        response = _post(client, public_png, live.auth("ivy"))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-uunet-model-id"] == TOY_MODEL_ID
    assert response.headers["x-uunet-camera-id"] == CAMERA_ID
    assert response.headers["x-uunet-verified"] == "true"
    assert response.headers["x-uunet-faces"] == "3"
    rgb = decode_png(response.content)
    np.testing.assert_array_equal(crop(rgb, SYNTHETIC_BOXES[0]), crop(original, SYNTHETIC_BOXES[0]))
    record = _last_audit(live)
    assert str(record.seq) == response.headers["x-uunet-audit-seq"]
    assert (record.actor, record.action, record.outcome) == ("ivy", "reconstruct_frame", "granted")
    assert record.case_id == "CASE-2024-0042" and record.model_ids == TOY_MODEL_ID
    assert record.clip_sha256 is not None and len(record.clip_sha256) == 64


def test_no_token_401_and_auditor_403_are_refused_and_audited(live, public_png):
    with live.client() as client:
        anonymous = _post(client, public_png, {})
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "not_authenticated"
        assert _last_audit(live).actor == "anonymous"
        auditor = _post(client, public_png, live.auth("audrey"))
    assert auditor.status_code == 403 and auditor.json()["error"] == "permission_denied"
    record = _last_audit(live)
    assert (record.actor, record.role, record.outcome) == ("audrey", "auditor", "refused")


def test_forged_message_422_names_the_tag(live, public_png):
    frame = decode_png(public_png)
    frame[120, 160] ^= 0x40  # edit the picture after sealing
    with live.client() as client:
        response = _post(client, encode_png(frame), live.auth("ivy"))
    assert response.status_code == 422
    assert response.json()["error"] == "forged_message" and response.json()["field"] == "tag"
    record = _last_audit(live)
    assert record.outcome == "refused" and "forged_message" in record.detail
    assert record.case_id == "CASE-2024-0042"


def test_unknown_model_422(live, tmp_path):
    other = write_toy_model_dir(tmp_path / "other", model_id="0badc0de0badc0de")
    out = deidentify_clip(
        synthetic_frames(1),
        lambda i, f: [SYNTHETIC_BOXES[0]],
        other,
        tmp_path / "o.mkv",
        camera_id=CAMERA_ID,
        key=b"k3y-of-cam-lobby-01-for-tests-only!",
    )
    png = encode_png(next(iter(read_frames(out))).rgb)
    with live.client() as client:
        response = _post(client, png, live.auth("ivy"))
    assert response.status_code == 422 and response.json()["error"] == "unknown_model"
    assert response.json()["model_id"] == "0badc0de0badc0de"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"justification": "Needed for case 42 robbery."}, "case_id"),
        ({"case_id": "C-1", "justification": "   "}, "justification"),
        ({"case_id": "C-1", "justification": "short"}, "justification"),
        ({"case_id": "C-1\x07", "justification": "Needed for case 42 robbery."}, "case_id"),
    ],
    ids=["missing-case-id", "blank-justification", "short-justification", "control-char"],
)
def test_missing_or_bad_reason_422_names_the_field_and_is_audited(live, public_png, data, field):
    with live.client() as client:
        response = _post(client, public_png, live.auth("ivy"), data=data)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request" and response.json()["field"] == field
    record = _last_audit(live)
    assert (record.actor, record.outcome) == ("ivy", "refused") and field in record.detail


def test_a_nul_in_the_justification_is_a_422_audited_with_its_standin(live, public_png):
    # PostgreSQL's text cannot hold a NUL: without the stand-in, a 503 and no audit record.
    data = {"case_id": "C-1", "justification": "Needed for case 42\x00 robbery."}
    with live.client() as client:
        response = _post(client, public_png, live.auth("ivy"), data=data)
        assert response.status_code == 422 and response.json()["field"] == "justification"
        record = _last_audit(live)
        search = client.get("/v1/audit", params={"actor": "iv\x00y"}, headers=live.auth("audrey"))
    assert (record.actor, record.outcome) == ("ivy", "refused")
    assert record.justification == "Needed for case 42\u2400 robbery."
    assert search.status_code == 200 and search.json()["records"] == []  # no such actor
    assert live.services.audit_log.verify().valid


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"GIF89a not a png at all", 415, "unsupported_image"),
        (encode_png(synthetic_frames(1)[0]), 422, "no_message"),
        (
            encode_png(stego.embed(synthetic_frames(1)[0], "1,0,0,999,999,")),
            422,
            "malformed_message",
        ),
        (encode_png(np.zeros((1, 1, 3), np.uint8)), 422, "unsupported_frame_size"),
    ],
    ids=["not-png", "no-message", "box-outside-frame", "1x1"],
)
def test_bad_frames_get_typed_errors(live, payload, status, code):
    with live.client() as client:
        response = _post(client, payload, live.auth("ivy"))
        assert client.get("/healthz").status_code == 200
    assert response.status_code == status and response.json()["error"] == code
    assert _last_audit(live).outcome == "refused"


def test_multipart_part_without_name_400(live):
    with live.client() as client:
        response = client.post(
            ROUTE,
            content=b"--xyz\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xyz--\r\n",
            headers={**live.auth("ivy"), "Content-Type": "multipart/form-data; boundary=xyz"},
        )
    assert response.status_code == 400 and response.json()["error"] == "malformed_request"


def _unknown_camera_png(models_dir, tmp_path) -> bytes:
    """A v1 frame signed by a camera whose key this authority does not hold."""
    out = unknown_camera_clip(models_dir, tmp_path / "unknown-camera.mkv")
    return encode_png(next(iter(read_frames(out))).rgb)


def test_unsigned_or_unknown_camera_frame_is_refused_by_default(live, models_dir, tmp_path):
    raw = synthetic_frames(1)[0]  # a raw source frame with a paper message: no tag at all
    paper = encode_png(seal_frame(raw, [SYNTHETIC_BOXES[0]], message_format="paper")[0])
    unknown_camera = _unknown_camera_png(models_dir, tmp_path)
    with live.client() as client:
        for png, field in ((paper, "version"), (unknown_camera, "camera")):
            response = _post(client, png, live.auth("ivy"))
            assert response.status_code == 422, response.text
            assert response.json()["error"] == "unauthenticated_message"
            assert response.json()["field"] == field
            record = _last_audit(live)
            assert record.outcome == "refused" and "unauthenticated_message" in record.detail


def test_unverified_frame_is_reversed_only_when_allowed_and_marked(
    server_factory, models_dir, tmp_path
):
    server = server_factory(messages={"require_authentication": False})
    with server.client() as client:
        response = _post(client, _unknown_camera_png(models_dir, tmp_path), server.auth("ivy"))
    assert response.status_code == 200 and response.headers["x-uunet-verified"] == "false"
    assert response.headers["x-uunet-camera-id"] == "cam-unknown-07"
    record = server.services.audit_log.records(limit=10_000)[-1]
    assert record.outcome == "granted" and "unverified" in record.detail
