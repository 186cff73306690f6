"""models.data.crops: every rule's geometry, clipping and errors."""

from __future__ import annotations

import pytest

from models.data.crops import FaceToHead, FullFrame, HeadTop, RelativeBox, crop_box, parse_crop
from shared.geometry import Box, expand_to_head


def test_head_top_on_a_mars_box_is_the_documented_square():
    # 256 high x 128 wide MARS crop: side 0.22 * 256 = 56, centred: x 36..92, y 0..56.
    assert crop_box(HeadTop(), 128, 256, None) == Box(36, 0, 56, 56)


def test_head_top_inside_a_region_box_is_offset_and_capped_by_width():
    box = crop_box(HeadTop(height_fraction=0.5, top_fraction=0.1), 640, 480, Box(100, 50, 40, 200))
    # side = min(40, 200, 100) = 40; top = 50 + 20; left = 100 + 0.
    assert box == Box(100, 70, 40, 40)


def test_relative_box_scales_with_the_image():
    rule = RelativeBox(x=8 / 89, y=26 / 109, w=72 / 89, h=72 / 109)
    assert crop_box(rule, 89, 109, None) == Box(8, 26, 72, 72)
    assert crop_box(rule, 178, 218, None) == Box(16, 52, 144, 144)


def test_face_to_head_is_the_edge_head_roi():
    face = Box(100, 80, 40, 50)
    assert crop_box(FaceToHead(), 320, 240, face) == expand_to_head(face, 320, 240, margin=0.25)


def test_full_frame_and_string_specs():
    assert crop_box(parse_crop("full"), 50, 40, None) == Box(0, 0, 50, 40)
    assert isinstance(parse_crop("head_top"), HeadTop)
    assert crop_box(FullFrame(), 50, 40, Box(10, 10, 5, 5)) == Box(10, 10, 5, 5)
    with pytest.raises(ValueError, match="unknown crop"):
        parse_crop("face")  # type: ignore[arg-type]


def test_region_partly_outside_is_clipped_fully_outside_raises():
    assert crop_box(FullFrame(), 100, 100, Box(90, 90, 30, 30)) == Box(90, 90, 10, 10)
    with pytest.raises(ValueError, match="outside"):
        crop_box(FullFrame(), 100, 100, Box(200, 200, 10, 10))


def test_face_to_head_without_a_box_raises():
    with pytest.raises(ValueError, match="face box"):
        crop_box(FaceToHead(), 100, 100, None)


@pytest.mark.parametrize(
    "make",
    [
        lambda: HeadTop(height_fraction=0),
        lambda: HeadTop(top_fraction=1.0),
        lambda: RelativeBox(0.5, 0, 0.6, 1),
        lambda: RelativeBox(-0.1, 0, 0.5, 0.5),
        lambda: FaceToHead(margin=-1),
    ],
)
def test_bad_rule_parameters_raise(make):
    with pytest.raises(ValueError):
        make()
