"""End to end with sealed faces: the real edge agent (detection, tracking, Ue, sealing to the
authority's public key) writes the evidence and a lossy stream of the sample clip; a real
authority server, holding the private key, reverses both over HTTP. Lossless: every face comes
back bit-exact; lossy: every face from the SEI payload at >= 40 dB, and the clip verifies with
authentication required. Without the key the same clip goes through ``Ud``."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest

from edge_agent.samples.make_sample import SAMPLE as SAMPLE_CLIP
from shared import stego
from shared.roi_message import parse_message
from shared.sei import parse_sei_payload
from shared.video_io import read_frames
from tests.authority_service.conftest import (
    reason,
    wait_for_job,
)
from tests.authority_service.edge_run import run_edge_on_sample
from tests.authority_service.sealing import key_pair
from tests.toy_models import TOY_MODEL_ID

FRAMES = 8


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory, models_dir):
    """The edge agent's evidence and lossy files of the sample clip, sealed to a new key."""
    run = run_edge_on_sample(tmp_path_factory.mktemp("edge"), models_dir / TOY_MODEL_ID, FRAMES)
    return run.private_key, run.evidence, run.lossy


def _reverse(live, clip):
    headers = live.auth("ivy")
    with live.client() as client:
        accepted = client.post(
            "/v1/reconstructions",
            files={"clip": (clip.name, clip.read_bytes(), "application/octet-stream")},
            data=reason(),
            headers=headers,
        )
        assert accepted.status_code == 202, accepted.text
        job = wait_for_job(client, accepted.json()["id"], headers)
        assert job["status"] == "succeeded", job
        result = client.get(job["result_url"], headers=headers)
        assert result.status_code == 200
    return job["report"], result.content


def _write(tmp_path, data: bytes):
    path = tmp_path / "result.mkv"
    path.write_bytes(data)
    return [f.rgb for f in read_frames(path)]


def _psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _roi(frame, box):
    return frame[box.y : box.bottom, box.x : box.right]


@pytest.mark.slow
def test_edge_evidence_comes_back_bit_exact_from_the_authority(edge_run, servers, tmp_path):
    private, evidence, _ = edge_run
    source = [f.rgb for f in islice(read_frames(SAMPLE_CLIP), FRAMES)]
    messages = {}
    for frame in read_frames(evidence):
        message = parse_message(stego.extract(frame.rgb))
        messages[message.frame_index] = message
    report, data = _reverse(servers("keyed", [private]), evidence)
    methods = report["faces_by_method"]
    faces = sum(len(m.boxes) for m in messages.values())
    assert report["verified_frames"] == FRAMES and faces > 0
    (run_id,) = {m.run_id for m in messages.values()}  # one run, its id in every message
    assert run_id is not None and len(run_id) == 16 and report["run_ids"] == [run_id]
    assert methods["sealed"] == faces and methods["ud"] == 0
    assert methods["key_ids"] == [private.key_id]
    result = _write(tmp_path, data)
    for index, message in messages.items():
        for box in message.boxes:  # every ROI pixel is the source's
            np.testing.assert_array_equal(_roi(result[index], box), _roi(source[index], box))


@pytest.mark.slow
def test_edge_lossy_stream_faces_come_back_from_the_sei_at_40_db(edge_run, servers, tmp_path):
    private, _, lossy = edge_run
    source = [f.rgb for f in islice(read_frames(SAMPLE_CLIP), FRAMES)]
    messages = {}
    for frame in read_frames(lossy):
        (payload,) = frame.sei
        message = parse_message(parse_sei_payload(payload))
        messages[message.frame_index] = message
    report, data = _reverse(servers("lossy", [private]), lossy)
    assert report["message_source"] == "sei"
    assert report["verified_frames"] == FRAMES  # authenticated by the sealed payloads' HMAC
    faces = sum(len(m.boxes) for m in messages.values())
    assert report["faces_by_method"]["sealed"] == faces > 0
    result = _write(tmp_path, data)
    worst = min(
        _psnr(_roi(result[i], box), _roi(source[i], box))
        for i, message in messages.items()
        for box in message.boxes
    )
    assert worst >= 40.0, worst


@pytest.mark.slow
def test_without_the_private_key_the_edge_evidence_goes_through_ud(edge_run, servers):
    _, evidence, _ = edge_run
    other = key_pair(evidence.parent / "other")
    report, _ = _reverse(servers("other-key", [other]), evidence)
    methods = report["faces_by_method"]
    assert methods["sealed"] == 0 and methods["ud"] > 0
    assert methods["ud_reasons"] == {"key_not_held": methods["ud"]}
