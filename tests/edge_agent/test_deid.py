"""edge_agent.deid: ROIs go through the real ONNX Ue and are pasted back; bad output raises."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.deid import DeidentificationError, Deidentifier
from edge_agent.noise import NoiseBank
from shared.geometry import Box
from shared.model_dir import load_encoder


@pytest.fixture
def deidentifier(toy_model) -> Deidentifier:
    encoder, card = load_encoder(toy_model, providers="cpu", threads=1)
    return Deidentifier(encoder, card, NoiseBank(b"noise", card.input_size))


def test_apply_replaces_exactly_the_rois_with_ue_output(deidentifier):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    original = frame.copy()
    rois = [Box(10, 10, 64, 64), Box(120, 40, 64, 64)]  # model size: no resampling
    deidentifier.apply(frame, rois, [0, 1])
    for roi in rois:
        got = frame[roi.y : roi.bottom, roi.x : roi.right]
        want = 255 - original[roi.y : roi.bottom, roi.x : roi.right]  # toy Ue: a = 1 - x
        assert np.abs(got.astype(int) - want).max() <= 1
    mask = np.ones(frame.shape[:2], bool)
    for roi in rois:
        mask[roi.y : roi.bottom, roi.x : roi.right] = False
    np.testing.assert_array_equal(frame[mask], original[mask])


def test_apply_with_resized_rois_changes_every_roi_pixel(deidentifier):
    frame = np.full((200, 200, 3), 30, np.uint8)
    roi = Box(20, 30, 97, 131)
    deidentifier.apply(frame, [roi], [7])
    assert (frame[roi.y : roi.bottom, roi.x : roi.right] == 225).all()


class _BadModel:
    def __init__(self, out):
        self.out = out

    def __call__(self, batch):
        if isinstance(self.out, Exception):
            raise self.out
        return self.out


@pytest.mark.parametrize(
    "out",
    [
        RuntimeError("onnxruntime exploded"),
        np.zeros((1, 3, 32, 32), np.float32),
        np.full((1, 3, 64, 64), np.nan, np.float32),
    ],
)
def test_apply_with_failing_or_bad_ue_raises(deidentifier, out):
    deidentifier.encoder = _BadModel(out)
    with pytest.raises(DeidentificationError):
        deidentifier.apply(np.zeros((100, 100, 3), np.uint8), [Box(0, 0, 50, 50)], [0])


def test_apply_with_box_outside_frame_raises(deidentifier):
    with pytest.raises(DeidentificationError):
        deidentifier.apply(np.zeros((50, 50, 3), np.uint8), [Box(40, 40, 20, 20)], [0])
