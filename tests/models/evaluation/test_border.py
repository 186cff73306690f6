import numpy as np
import pytest

from models.evaluation.border import BorderSteps, luma
from shared.geometry import Box


def _gradient(width=60, height=40):
    row = np.arange(width, dtype=np.uint8)
    return np.repeat(np.tile(row, (height, 1))[:, :, None], 3, axis=2)


def test_luma_of_grey_is_the_grey_level():
    assert luma(np.full((2, 2, 3), 90, np.uint8)) == pytest.approx(np.full((2, 2), 90.0))


def test_unchanged_frame_has_ratio_one():
    frame = _gradient()
    steps = BorderSteps()
    steps.add(frame, frame.copy(), [Box(10, 10, 20, 20)])
    assert steps.ratio == pytest.approx(1.0)
    assert steps.pairs == 80 and steps.rois == 1


def test_hard_paste_of_a_flat_patch_in_a_gradient():
    source = _gradient()
    public = source.copy()
    public[10:30, 10:30] = 0
    steps = BorderSteps()
    steps.add(source, public, [Box(10, 10, 20, 20)])
    # Source: 0 across top/bottom, 1 across left/right (40 pairs). Public: |0 - x| outside.
    assert steps.source_sum == pytest.approx(40.0)
    assert steps.public_sum == pytest.approx(2 * sum(range(10, 30)) + 20 * 9 + 20 * 30)
    assert steps.ratio == pytest.approx(39.0)
    assert steps.as_dict()["public_mean_step"] == pytest.approx(1560 / 80)


def test_pairs_inside_another_roi_or_beyond_the_frame_are_left_out():
    frame = _gradient()
    steps = BorderSteps()
    # Two boxes side by side: the shared border's outside pixels are surrogate, not scene;
    # the first box touches the frame's top and left edges.
    steps.add(frame, frame.copy(), [Box(0, 0, 20, 20), Box(20, 0, 20, 20)])
    # Box 1: bottom only (20). Box 2: bottom (20) and right (20); its left pairs lie in box 1.
    assert steps.pairs == 60


def test_no_source_step_gives_nan_and_shape_mismatch_raises():
    flat = np.full((20, 20, 3), 50, np.uint8)
    steps = BorderSteps()
    steps.add(flat, flat.copy(), [Box(5, 5, 5, 5)])
    assert np.isnan(steps.ratio)
    with pytest.raises(ValueError, match="shape"):
        steps.add(flat, flat[:10], [Box(5, 5, 5, 5)])
    with pytest.raises(ValueError, match="outside"):
        steps.add(flat, flat, [Box(15, 15, 10, 10)])


def test_band_ratio_sees_an_edge_the_feather_moved_inside_the_box():
    """A paste whose band blends into the scene passes the border-pair ratio, but a flat
    surrogate that differs from the scene shows as steps inside the band."""
    from shared.compositing import Composition

    source = _gradient(120, 80) * 2  # a smooth horizontal ramp, 2 levels per pixel
    public = source.copy()
    box = Box(30, 20, 50, 50)
    Composition("smooth", 0.16, (16,)).paste(public, np.zeros((1, 3, 16, 16), np.float32), [box])
    steps = BorderSteps()
    steps.add(source, public, [box])
    assert steps.ratio < 2.0  # across the border: mostly the scene
    assert steps.band_ratio > 4 * steps.ratio  # inside the band: the ramp down to black
    unchanged = BorderSteps()
    unchanged.add(source, source.copy(), [box])
    assert unchanged.band_ratio == pytest.approx(1.0)


def test_ring_luma_offset_sees_a_brighter_surrogate_the_feather_hides():
    """A surrogate 30 levels brighter than the scene, feathered in: no step at the border, but
    its ring differs from the scene by about the offset; one that carries the scene has 0."""
    from shared.compositing import Composition

    source = _gradient(120, 80) * 2
    box = Box(30, 20, 48, 48)
    scene = source[20:68, 30:78].astype(np.float32) / 255.0
    brighter = np.clip(scene + 30 / 255.0, 0, 1).transpose(2, 0, 1)[None]
    public = source.copy()
    Composition("smooth", 0.08, (48,)).paste(public, brighter, [box])
    steps = BorderSteps()
    steps.add(source, public, [box])
    figures = steps.as_dict()
    assert steps.ratio < 1.5  # the step across the border is the scene's own
    assert 15 < figures["ring_luma_offset"] < 31
    assert figures["ring_luma_bias"] == pytest.approx(figures["ring_luma_offset"], rel=1e-3)
    carried = source.copy()
    Composition("smooth", 0.08, (48,)).paste(carried, scene.transpose(2, 0, 1)[None], [box])
    same = BorderSteps()
    same.add(source, carried, [box])
    assert same.ring_luma_offset < 1.0


def test_ring_leaves_out_pixels_of_another_roi():
    """Two overlapping ROIs changed only where they overlap: that region is surrogate for
    both, so neither ring counts it (offset 0); one ROI alone does see it."""
    frame = _gradient()
    public = frame.copy()
    public[0:20, 20:30] = 255
    both = BorderSteps()
    both.add(frame, public, [Box(10, 0, 20, 20), Box(20, 0, 20, 20)])
    assert both.ring_pixels > 0 and both.ring_luma_offset == 0.0
    alone = BorderSteps()
    alone.add(frame, public, [Box(10, 0, 20, 20)])
    assert alone.ring_luma_offset > 50
