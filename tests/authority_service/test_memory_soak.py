"""The authority's memory stays flat from clip job to clip job (a short soak, real server).

Each job's decoded frames used to wait for a full pass of the cyclic garbage collector (PyAV's
cached side-data container refers back to its frame), so every job left all the frames it
decoded in memory: about 28 MiB per job of the clip below. The full soak, on the shipped model
in a separate ``serve`` process, is ``bench/authority_soak.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.authority_service.conftest import (
    CAMERA_ID,
    CAMERA_KEY,
    SYNTHETIC_BOXES,
    reason,
    wait_for_job,
)
from tests.authority_service.edge_role import deidentify_clip, synthetic_frames
from tests.toy_models import TOY_MODEL_ID

STATUS = Path("/proc/self/status")
JOBS, WARMUP = 8, 2
#: Generous: what the allocator's pools may still take; the leak was about 28 MiB per job.
MAX_MIB_PER_JOB = 6.0

pytestmark = pytest.mark.skipif(not STATUS.is_file(), reason="reads VmRSS from /proc (Linux)")


def _rss_mib() -> float:
    for line in STATUS.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture(scope="module")
def clip_640x480(tmp_path_factory, models_dir) -> bytes:
    """24 sealed 640x480 FFV1 frames with two faces each (its decoded frames: 28 MiB)."""
    out = tmp_path_factory.mktemp("soak") / "evidence.mkv"
    deidentify_clip(
        synthetic_frames(24, width=640, height=480),
        lambda index, frame: SYNTHETIC_BOXES[:2],
        models_dir / TOY_MODEL_ID,
        out,
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )
    return out.read_bytes()


def test_memory_does_not_grow_with_each_clip_job(server_factory, clip_640x480):
    server = server_factory()  # in this process: its RSS is the server's
    headers = server.auth("ivy")
    rss = []
    with server.client() as client:
        for _ in range(JOBS):
            response = client.post(
                "/v1/reconstructions",
                files={"clip": ("evidence.mkv", clip_640x480, "video/x-matroska")},
                data=reason(),
                headers=headers,
            )
            assert response.status_code == 202, response.text
            job = wait_for_job(client, response.json()["id"], headers)
            assert job["status"] == "succeeded", job
            assert job["report"]["faces"] == 48
            assert client.get(job["result_url"], headers=headers).status_code == 200
            rss.append(_rss_mib())
    per_job = np.polyfit(np.arange(WARMUP, JOBS), rss[WARMUP:], 1)[0]
    assert per_job < MAX_MIB_PER_JOB, f"{per_job:.1f} MiB per job; RSS after each: {rss}"
