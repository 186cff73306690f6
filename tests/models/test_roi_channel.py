"""models.roi_channel: training sees exactly the pixels the edge pastes and the authority crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.roi_channel import RoiChannel, resize_from_model, resize_to_model
from shared import geometry
from shared.compositing import Composition


@pytest.mark.parametrize("resample", ["smooth", "replicate"])
@pytest.mark.parametrize(("height", "width"), [(100, 90), (40, 40), (64, 64), (23, 31)])
def test_torch_resize_matches_opencv(resample, height, width):
    rng = np.random.default_rng(0)
    patch = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    want = geometry.resize_from_model(patch, width, height, resample).astype(np.float32)
    tensor = torch.from_numpy(patch.transpose(2, 0, 1)[None].astype(np.float32))
    got = resize_from_model(tensor, height, width, resample)[0].numpy().transpose(1, 2, 0)
    assert np.abs(np.clip(got, 0, 255) - want).max() <= 1.0  # OpenCV rounds to uint8
    back = geometry.resize_to_model(want.astype(np.uint8), 16, resample).astype(np.float32)
    roi = torch.from_numpy(want.astype(np.uint8).transpose(2, 0, 1)[None].astype(np.float32))
    got_back = resize_to_model(roi, 16, resample)[0].numpy().transpose(1, 2, 0)
    assert np.abs(np.clip(got_back, 0, 255) - back).max() <= 1.0


def test_channel_is_the_edge_paste_then_the_authority_crop(monkeypatch):
    """Same ROI size and band: the channel's output equals the numpy path within 2 levels."""
    composition = Composition("smooth", 0.1, (16,))
    channel = RoiChannel(
        composition,
        20,
        60,
        groups=1,
        lsb_flip_prob=0.0,
        identity_prob=0.0,
        feather_min=0.1,
        feather_max=0.1,
    )
    monkeypatch.setattr(channel, "_draw_size", lambda size, generator: (48, 40))
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    # Numpy: the scene's ROI is x enlarged, the edge pastes a, the authority crops it.
    frame = np.zeros((60, 60, 3), np.uint8)
    box = geometry.Box(5, 7, 40, 48)
    frame[7:55, 5:45] = geometry.resize_from_model(x, 40, 48, "smooth")
    composition.paste(frame, a.transpose(2, 0, 1)[None] / 255.0, [box])
    want = composition.crops(frame, [box], 16)[0]
    to_t = lambda img: torch.from_numpy(img.transpose(2, 0, 1)[None] / 255.0).float()  # noqa: E731
    got = channel(to_t(a), to_t(x))[0].numpy()
    assert np.abs(got - want).max() <= 2.5 / 255.0


def test_channel_draws_only_sides_that_go_through_the_model_size():
    composition = Composition("smooth", 0.08, (64, 128))
    small = RoiChannel(composition, 20, 320)
    big = RoiChannel(composition, 20, 320)
    generator = torch.Generator().manual_seed(0)
    sides_64 = {min(small._draw_size(64, generator)) for _ in range(200)}
    sides_128 = {min(big._draw_size(128, generator)) for _ in range(200)}
    assert max(sides_64) < 130 and min(sides_128) > 95
    assert composition.size_for(geometry.Box(0, 0, 300, 300)) == 128


def test_channel_gradient_reaches_a():
    channel = RoiChannel(
        Composition("smooth", 0.1, (16,)), 8, 40, feather_min=0.05, feather_max=0.15
    )
    a = torch.rand(4, 3, 16, 16, requires_grad=True)
    channel(a, torch.rand(4, 3, 16, 16)).sum().backward()
    assert a.grad is not None and float(a.grad.abs().sum()) > 0
