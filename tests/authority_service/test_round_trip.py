"""End to end on a real clip: the edge's part de-identifies it to a lossless evidence file, an
investigator reverses it over HTTP (real uvicorn, httpx), the faces come back; refusals and the
audit chain behave. The original frames exist only in this test."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest

from shared.frame_seal import open_frame
from shared.geometry import Box, crop
from shared.video_io import LosslessWriter, read_frames
from tests.authority_service.conftest import CAMERA_ID, CAMERA_KEY, reason, wait_for_job
from tests.authority_service.edge_role import deidentify_clip
from tests.authority_service.tamper import Raw
from tests.media import MEDIA_DIR, needs_media
from tests.toy_models import TOY_MODEL_ID

CLIP = MEDIA_DIR / "videos" / "hamilton_640x360.mp4"
FRAMES = 16
# Head boxes of the singer (2x the model size), the pianist (smaller than it) and a spectator
# (1.4-1.5x) in the clip's first frames.
HEADS = [Box(484, 4, 128, 128), Box(30, 166, 56, 64), Box(40, 270, 96, 90)]
# The toy pair is exact; what remains is resampling the ROI to 64x64 and back (measured on these
# boxes, worst frame of 16: 27.8, 40.5 and 52.0 dB). De-identified ROIs: 0.5-2.8 dB.
MIN_RECONSTRUCTED_PSNR_DB = 25.0
MAX_PUBLIC_PSNR_DB = 12.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.slow
@needs_media
def test_real_clip_round_trip_over_http(live, models_dir, tmp_path):
    originals = [f.rgb for f in islice(read_frames(CLIP), FRAMES)]  # kept by the test only
    evidence = deidentify_clip(
        originals,
        lambda index, frame: HEADS,
        models_dir / TOY_MODEL_ID,
        tmp_path / "evidence.mkv",
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
        fps=30,
    )
    # Boxes and frame numbers come from the evidence itself (as with the real edge agent).
    public = {}
    for frame in read_frames(evidence):
        message = open_frame(frame.rgb, {CAMERA_ID: CAMERA_KEY}, require_authentication=True)
        public[message.frame_index] = (frame.rgb, message.boxes)
    assert sorted(public) == list(range(FRAMES))

    data = evidence.read_bytes()
    with live.client() as client:
        refused = client.post("/v1/reconstructions", files={"clip": ("e.mkv", data)}, data=reason())
        assert refused.status_code == 401
        auditor = client.post(
            "/v1/reconstructions",
            files={"clip": ("e.mkv", data)},
            data=reason(),
            headers=live.auth("audrey"),
        )
        assert auditor.status_code == 403

        ivy = live.auth("ivy")
        accepted = client.post(
            "/v1/reconstructions", files={"clip": ("e.mkv", data)}, data=reason(), headers=ivy
        )
        assert accepted.status_code == 202
        job = wait_for_job(client, accepted.json()["id"], ivy)
        assert job["status"] == "succeeded", job
        report = job["report"]
        assert report["frames"] == FRAMES and report["faces"] == FRAMES * len(HEADS)
        assert report["verified_frames"] == FRAMES and report["model_ids"] == [TOY_MODEL_ID]
        result = client.get(job["result_url"], headers=ivy)
        assert result.status_code == 200

        forged_path = tmp_path / "forged.mkv"
        frames = [f.rgb for f in read_frames(evidence)]
        frames[3][200, 300] ^= 0x08
        with LosslessWriter(forged_path, 640, 360, 30) as writer:
            for frame in frames:
                writer.write(frame)
        forged = forged_path.read_bytes()
        bad = client.post(
            "/v1/reconstructions", files={"clip": ("f.mkv", forged)}, data=reason(), headers=ivy
        )
        bad_job = wait_for_job(client, bad.json()["id"], ivy)
        bad_result = client.get(f"/v1/reconstructions/{bad_job['id']}/result", headers=ivy)
        assert bad_result.status_code == 422 and bad_result.json()["error"] == "forged_message"

        verified = client.get("/v1/audit/verify", headers=live.auth("audrey")).json()
        assert verified["valid"] is True and verified["records"] >= 8

    out = tmp_path / "reconstructed.mkv"
    out.write_bytes(result.content)
    restored = [f.rgb for f in read_frames(out)]
    assert len(restored) == FRAMES
    worst = {}
    for index, frame in enumerate(restored):
        hidden, boxes = public[index]
        outside = np.ones(frame.shape[:2], bool)
        for box in boxes:
            got = psnr(crop(frame, box), crop(originals[index], box))
            assert psnr(crop(hidden, box), crop(originals[index], box)) < MAX_PUBLIC_PSNR_DB
            worst[box] = min(worst.get(box, np.inf), got)
            outside[box.y : box.bottom, box.x : box.right] = False
        np.testing.assert_array_equal(frame[outside], hidden[outside])
    assert min(worst.values()) > MIN_RECONSTRUCTED_PSNR_DB, worst

    # Someone edits the log in the database: the chain check must fail.
    Raw(live.services.db).execute(
        "UPDATE audit_log SET case_id = 'NOTHING-TO-SEE' WHERE action = 'reconstruct_clip'"
    )
    with live.client() as client:
        broken = client.get("/v1/audit/verify", headers=live.auth("audrey")).json()
    assert broken["valid"] is False and broken["problems"]
