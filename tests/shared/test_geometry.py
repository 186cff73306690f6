"""shared.geometry: head ROI, crop/resize/paste exactness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.geometry import (
    Box,
    BoxOutsideFrameError,
    batch_to_patches,
    clip_box,
    crop,
    crops_to_batch,
    expand_to_head,
    iou,
    paste,
    resize_from_model,
    resize_to_model,
)


def test_box_validates_fields():
    with pytest.raises(ValueError):
        Box(0, 0, 0, 5)
    with pytest.raises(ValueError):
        Box(-1, 0, 5, 5)
    with pytest.raises(TypeError):
        Box(0.5, 0, 5, 5)  # type: ignore[arg-type]
    assert Box(np.int64(3), 1, 2, 2).x == 3


def test_iou_values():
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert iou(Box(0, 0, 10, 10), Box(20, 20, 5, 5)) == 0.0
    assert iou(Box(0, 0, 10, 10), Box(5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_expand_to_head_grows_square_and_clips():
    head = expand_to_head(Box(100, 100, 40, 50), 640, 480, margin=0.25)
    assert head.w == head.h == 75
    # Centred on the face.
    assert abs((head.x + head.w / 2) - 120) <= 1 and abs((head.y + head.h / 2) - 125) <= 1
    corner = expand_to_head(Box(0, 0, 40, 40), 640, 480, margin=0.5)
    assert (corner.x, corner.y) == (0, 0) and corner.right <= 640
    assert corner.w == 60  # the part left of x=0 is clipped away


@settings(max_examples=200, deadline=None)
@given(
    x=st.integers(0, 600),
    y=st.integers(0, 440),
    w=st.integers(1, 200),
    h=st.integers(1, 200),
    margin=st.floats(0, 1),
)
def test_expand_to_head_always_inside_frame_and_covers_face(x, y, w, h, margin):
    w, h = min(w, 640 - x), min(h, 480 - y)
    face = Box(x, y, w, h)
    head = expand_to_head(face, 640, 480, margin=margin)
    assert head.fits_in(640, 480)
    assert head.x <= face.x and head.y <= face.y
    assert head.right >= face.right and head.bottom >= face.bottom


def test_expand_to_head_rejects_face_outside_frame():
    with pytest.raises(BoxOutsideFrameError):
        expand_to_head(Box(630, 0, 20, 20), 640, 480)


def test_clip_box_outside_is_none():
    assert clip_box(-50, -50, -1, -1, 100, 100) is None
    assert clip_box(-5.5, 2.2, 10.1, 20.9, 100, 100) == Box(0, 2, 11, 19)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_model_to_roi_and_back_is_exact_for_integer_scales(k):
    patch = np.random.default_rng(k).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    enlarged = resize_from_model(patch, 64 * k, 64 * k)
    assert enlarged.shape == (64 * k, 64 * k, 3)
    np.testing.assert_array_equal(resize_to_model(enlarged, 64), patch)


def test_paste_changes_only_the_box_and_crop_reads_it_back():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
    original = frame.copy()
    box = Box(30, 20, 40, 50)
    patch = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    paste(frame, patch, box)
    np.testing.assert_array_equal(crop(frame, box), patch)
    mask = np.ones(frame.shape[:2], bool)
    mask[20:70, 30:70] = False
    np.testing.assert_array_equal(frame[mask], original[mask])


def test_paste_size_mismatch_or_outside_raises():
    frame = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError):
        paste(frame, np.zeros((10, 11, 3), np.uint8), Box(0, 0, 10, 10))
    with pytest.raises(BoxOutsideFrameError):
        paste(frame, np.zeros((10, 10, 3), np.uint8), Box(45, 45, 10, 10))
    with pytest.raises(BoxOutsideFrameError):
        crop(frame, Box(45, 45, 10, 10))


def test_batch_round_trip_through_paste_and_crop():
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = [Box(0, 0, 128, 128), Box(200, 100, 64, 64), Box(100, 130, 96, 96)]
    outputs = rng.random((3, 3, 64, 64), dtype=np.float32)
    for patch, box in zip(batch_to_patches(outputs), boxes, strict=True):
        paste(frame, resize_from_model(patch, box.w, box.h), box)
    back = crops_to_batch(frame, boxes, 64)
    assert back.dtype == np.float32 and back.shape == (3, 3, 64, 64)
    # Integer scales (1x, 2x, 1.5x is not) come back to within one quantisation level.
    expected = batch_to_patches(outputs).transpose(0, 3, 1, 2) / 255.0
    np.testing.assert_allclose(back[:2], expected[:2], atol=1e-6)
    assert np.abs(back[2] - expected[2]).mean() < 0.1


def test_batch_to_patches_clips_and_rounds():
    out = batch_to_patches(np.array([[[[-0.5, 0.5, 1.5, 0.9999]]] * 3], np.float32))
    assert out.dtype == np.uint8
    assert out[0, 0, :, 0].tolist() == [0, 128, 255, 255]
    with pytest.raises(ValueError):
        batch_to_patches(np.zeros((1, 4, 8, 8), np.float32))
