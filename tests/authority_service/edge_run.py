"""The real edge agent (``edge_agent.app``: detection, tracking, ``Ue``, optionally faces sealed
to the authority's public key) run on the sample clip, for the tests that reverse what it
wrote."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.app import build_agent
from edge_agent.cli import load_edge_settings
from edge_agent.credentials import CAMERA_KEY_ENV
from edge_agent.samples.make_sample import SAMPLE
from shared.sealing_keys import PUBLIC_KEY_NAME, SealingPrivateKey
from tests.authority_service.conftest import CAMERA_ID, CAMERA_KEY
from tests.authority_service.sealing import key_pair


@dataclass(frozen=True)
class EdgeRun:
    """What the edge wrote: the lossless evidence, the lossy stream, the key it sealed to
    (``None``: no sealing), and how many faces it replaced."""

    evidence: Path
    lossy: Path
    private_key: SealingPrivateKey | None
    frames: int
    faces: int


def run_edge_on_sample(out: Path, model_dir: Path, frames: int, *, seal: bool = True) -> EdgeRun:
    """Run ``uunet-edge`` on the sample clip's first ``frames`` frames (the camera id and key
    the authority tests' servers know); with ``seal``, sealing the faces to a new key pair made
    in ``out/keys``."""
    private = None
    sealing: dict[str, object] = {}
    if seal:
        private = key_pair(out / "keys")
        sealing = {"sealed_faces": {"recipients": [str(out / "keys" / PUBLIC_KEY_NAME)]}}
    with pytest.MonkeyPatch.context() as env:
        env.setenv(CAMERA_KEY_ENV, CAMERA_KEY.decode())
        env.delenv("CREDENTIALS_DIRECTORY", raising=False)
        settings = load_edge_settings(
            None,
            {
                "camera": {"id": CAMERA_ID},
                "source": {"url": str(SAMPLE)},
                "model": {"dir": str(model_dir), "threads": 1},
                "privacy": {"allow_public_decoder": True},  # the toy dir holds ud.onnx too
                **sealing,
                "outputs": {
                    "evidence": {"path": str(out / "evidence.mkv"), "segment_s": None},
                    "lossy": {"target": str(out / "public.mp4")},
                },
                "metrics": {"enabled": False},
                "max_frames": frames,
            },
        )
        agent = build_agent(settings)
        assert agent.run().frames_processed == frames
    faces = int(agent.stats.get("faces_deidentified"))
    assert faces > 0 and (not seal or agent.stats.get("faces_sealed") == faces)
    return EdgeRun(out / "evidence.mkv", out / "public.mp4", private, frames, faces)
