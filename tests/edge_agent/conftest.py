"""Fixtures of the edge agent tests: the toy model, the sample clip, a camera key, settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.cli import load_edge_settings
from edge_agent.config import EdgeSettings
from edge_agent.credentials import CAMERA_KEY_ENV
from edge_agent.samples.make_sample import SAMPLE
from tests.toy_models import write_toy_model_dir

CAMERA_KEY = b"test-camera-key-0123456789"
CAMERA_ID = "cam-test"


@pytest.fixture(scope="session")
def toy_model(tmp_path_factory) -> Path:
    return write_toy_model_dir(tmp_path_factory.mktemp("model"), decoder=False)  # edge package


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    assert SAMPLE.is_file(), f"sample clip missing: {SAMPLE}"
    return SAMPLE


@pytest.fixture
def camera_key_env(monkeypatch) -> bytes:
    monkeypatch.setenv(CAMERA_KEY_ENV, CAMERA_KEY.decode())
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    return CAMERA_KEY


@pytest.fixture
def make_settings(toy_model, camera_key_env):
    def make(src: Path | str, **overrides) -> EdgeSettings:
        base = {
            "camera": {"id": CAMERA_ID},
            "source": {"url": str(src)},
            "model": {"dir": str(toy_model), "threads": 1},
            "metrics": {"enabled": False},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return load_edge_settings(None, base)

    return make


def roi_pixels_equal(source: np.ndarray, public: np.ndarray, box) -> int:
    """How many pixels of ``box`` are identical (all three channels) in both frames."""
    a = source[box.y : box.bottom, box.x : box.right]
    b = public[box.y : box.bottom, box.x : box.right]
    return int(np.all(a == b, axis=-1).sum())


def covers(outer, inner) -> bool:
    return (
        outer.x <= inner.x
        and outer.y <= inner.y
        and outer.right >= inner.right
        and outer.bottom >= inner.bottom
    )


def decoder_threads() -> int:
    """FFmpeg's decoder frame threads alive in this process (it names them ``av:<codec>:df<n>``;
    read from ``/proc/self/task``, Linux)."""
    names = []
    for task in Path("/proc/self/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:  # the thread ended meanwhile
            continue
    return sum(1 for name in names if name.startswith("av:") and ":df" in name)


def toy_processor(toy_model, detector, stats, *, wrap_encoder=None, **kwargs):
    """The edge's frame path on the toy model for unit tests: ``detector``, an IoU tracker
    holding a face 3 frames, a fixed noise secret, v1 messages under the test camera's key;
    ``wrap_encoder`` wraps ``Ue`` (a failing one), ``kwargs`` go to ``FrameProcessor``."""
    from edge_agent.deid import Deidentifier
    from edge_agent.noise import NoiseBank
    from edge_agent.pipeline import FrameProcessor
    from shared.model_dir import load_encoder
    from shared.tracking import IouTracker

    encoder, card = load_encoder(toy_model, providers="cpu", threads=1)
    if wrap_encoder is not None:
        encoder = wrap_encoder(encoder)
    return FrameProcessor(
        detector,
        IouTracker(max_missed=3),
        Deidentifier(encoder, card, NoiseBank(b"noise", card.input_size)),
        stats,
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
        **kwargs,
    )
