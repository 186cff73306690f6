"""shared.compositing: the one paste/crop rule of edge, authority, training and evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from shared.compositing import (
    LEGACY,
    Composition,
    CompositionError,
    feather_mask,
    group_by_size,
)
from shared.geometry import Box, crop


def test_feather_mask_is_one_inside_and_ramps_to_the_border():
    mask = feather_mask(100, 80, 0.1)[:, :, 0]  # band = 8 px
    assert mask.shape == (80, 100)
    assert np.all(mask[8:-8, 8:-8] == 1.0)
    assert 0.0 < mask[0, 50] < 0.05 and mask[40, 0] == mask[0, 50]
    row = mask[40, :9]
    assert np.all(np.diff(row) > 0)  # monotone ramp
    assert np.allclose(mask, mask[::-1, ::-1])  # symmetric
    assert np.all(feather_mask(10, 10, 0.05) == 1.0)  # band under a pixel: none
    with pytest.raises(ValueError):
        feather_mask(10, 10, 0.6)


def test_paste_blends_only_the_band_and_replaces_the_inside():
    frame = np.full((60, 60, 3), 200, np.uint8)
    box = Box(10, 10, 40, 40)
    batch = np.zeros((1, 3, 16, 16), np.float32)  # black surrogate
    Composition("smooth", 0.1, (16,)).paste(frame, batch, [box])
    region = crop(frame, box).astype(int)
    assert np.all(region[5:-5, 5:-5] == 0)  # inside: the surrogate exactly
    assert 0 < region[0, 20, 0] < 200  # border band: between scene and surrogate
    assert np.all(frame[:10] == 200) and np.all(frame[50:] == 200)  # outside untouched
    # The step across the box border is small: the outermost ROI pixel is mostly scene.
    assert abs(int(frame[10, 30, 0]) - int(frame[9, 30, 0])) < 20


def test_hard_paste_and_replication_for_round_one_models():
    frame = np.zeros((32, 32, 3), np.uint8)
    batch = np.random.default_rng(0).random((1, 3, 8, 8)).astype(np.float32)
    composition = Composition.from_card({"input_size": 8})
    assert composition == Composition("replicate", 0.0, (8,))
    composition.paste(frame, batch, [Box(0, 0, 16, 16)])
    block = frame[:2, :2].reshape(-1, 3)
    assert np.all(block == block[0])  # 2x2 replicated pixels
    assert LEGACY.resample == "replicate"


def test_smooth_paste_has_no_blocks():
    frame = np.zeros((32, 32, 3), np.uint8)
    batch = np.random.default_rng(0).random((1, 3, 8, 8)).astype(np.float32)
    Composition("smooth", 0.0, (8,)).paste(frame, batch, [Box(0, 0, 32, 32)])
    assert len(np.unique(frame[:4, :4, 0])) > 4


def test_size_for_picks_the_largest_size_that_fits():
    c = Composition("smooth", 0.08, (64, 128))
    assert c.size_for(Box(0, 0, 30, 30)) == 64
    assert c.size_for(Box(0, 0, 100, 100)) == 64
    assert c.size_for(Box(0, 0, 112, 112)) == 128  # 112 * 1.15 >= 128
    assert c.size_for(Box(0, 0, 300, 120)) == 128
    boxes = [Box(0, 0, 200, 200), Box(0, 0, 40, 40), Box(0, 0, 50, 50)]
    assert group_by_size(c, boxes) == {64: [1, 2], 128: [0]}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"resample": "nearest", "feather": 0.1, "sizes": [64]}, "resample"),
        ({"resample": "smooth", "feather": 0.7, "sizes": [64]}, "feather"),
        ({"resample": "smooth", "feather": 0.1, "sizes": [128, 64]}, "ascending"),
        ({"resample": "smooth", "feather": 0.1, "sizes": [32]}, "input_size"),
        ({"resample": "smooth", "feather": 0.1}, "missing"),
        ({"resample": "smooth", "feather": 0.1, "sizes": [64], "x": 1}, "unknown"),
        ("smooth", "JSON object"),
    ],
)
def test_from_card_refuses_malformed_entries(entry, message):
    with pytest.raises(CompositionError, match=message):
        Composition.from_card({"input_size": 64, "composition": entry})


def test_card_round_trip():
    c = Composition("smooth", 0.08, (64, 128))
    assert Composition.from_card({"input_size": 64, "composition": c.to_card()}) == c


def test_feather_masks_of_many_roi_sizes_are_not_kept_in_memory():
    """A daemon meets ever new ROI sizes; their masks must not pile up (only 1-D ramps)."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for side in range(200, 400):
            feather_mask(side, side + 7, 0.08)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 2 * 2**20, f"{kept / 2**20:.1f} MiB kept for 200 masks"
