"""How to get the face (head) region out of a frame: the crop rules every loader states.

A tracklet gives, per frame, an optional *region* box (``Tracklet.boxes``: a pedestrian box in
P-DESTRE, a face box in YouTube Faces) and one *rule* (``Tracklet.crop``) that turns the frame
size and that region into the final crop box, in frame pixels. The crop is then resized to
``S x S`` with :func:`shared.geometry.resize_to_model` (area down, bilinear up), exactly as the
edge does with a head ROI.

Rules:

* :class:`FullFrame` (``"full"``): the whole region (or frame). For face crops already framed
  like a head ROI (LFW, UTKFace, a tracklet folder of head crops). A non-square region is
  squashed to square, as the edge squashes a head ROI clipped at the frame border.
* :class:`HeadTop` (``"head_top"``): pedestrian boxes (MARS, P-DESTRE) hold a whole person; the
  head is near the top. The crop is a square of side ``height_fraction * H`` (at most the region
  width), centred horizontally, its top ``top_fraction * H`` below the region top. The default
  0.22 comes from body proportions (head height ~ 1/7.5 of the body, tracker boxes leave a small
  margin above it; a 256x128 MARS box gives a 56x56 square at x 36-92, y 0-56, the head
  filling roughly half of it, as a face fills an LFW crop). It was not tuned on MARS images
  (none are at hand here): check a few crops of your data.
* :class:`RelativeBox`: a fixed box in fractions of the region (aligned datasets: CelebA).
* :class:`FaceToHead`: the region is a *face* box (a detector's or YouTube Faces'); the crop is
  the head ROI around it from :func:`shared.geometry.expand_to_head` (the edge's own rule), so
  training crops are framed like the ROIs the edge will feed ``Ue``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from shared.geometry import Box, clip_box, expand_to_head

__all__ = [
    "CropRule",
    "CropSpec",
    "FaceToHead",
    "FullFrame",
    "HeadTop",
    "RelativeBox",
    "crop_box",
    "parse_crop",
]


@dataclass(frozen=True)
class FullFrame:
    """The whole region (or the whole frame when there is no region box)."""

    def locate(self, region: Box) -> Box:
        return region

    def describe(self) -> str:
        return "full"


@dataclass(frozen=True)
class HeadTop:
    """A square at the top of a pedestrian box (see the module docstring for the geometry)."""

    height_fraction: float = 0.22
    top_fraction: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.height_fraction <= 1.0:
            raise ValueError(f"height_fraction must be in (0, 1], got {self.height_fraction}")
        if not 0.0 <= self.top_fraction < 1.0:
            raise ValueError(f"top_fraction must be in [0, 1), got {self.top_fraction}")

    def locate(self, region: Box) -> Box:
        side = max(1, min(region.w, region.h, round(self.height_fraction * region.h)))
        top = min(round(self.top_fraction * region.h), region.h - side)
        left = (region.w - side) // 2
        return Box(region.x + left, region.y + top, side, side)

    def describe(self) -> str:
        return f"head_top(height_fraction={self.height_fraction}, top_fraction={self.top_fraction})"


@dataclass(frozen=True)
class RelativeBox:
    """A box given in fractions ``[0, 1]`` of the region's width (x, w) and height (y, h)."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"RelativeBox.{name} must be in [0, 1], got {value}")
        if (
            self.w <= 0
            or self.h <= 0
            or self.x + self.w > 1.0 + 1e-9
            or self.y + self.h > 1.0 + 1e-9
        ):
            raise ValueError(f"RelativeBox {self} does not lie inside the unit square")

    def locate(self, region: Box) -> Box:
        left = region.x + round(self.x * region.w)
        top = region.y + round(self.y * region.h)
        width = max(1, round(self.w * region.w))
        height = max(1, round(self.h * region.h))
        box = clip_box(left, top, left + width, top + height, region.right, region.bottom)
        if box is None:  # cannot happen for a box inside the unit square
            raise ValueError(f"{self} gives an empty crop in region {region.as_tuple()}")
        return box

    def describe(self) -> str:
        return f"relative_box(x={self.x:.4f}, y={self.y:.4f}, w={self.w:.4f}, h={self.h:.4f})"


@dataclass(frozen=True)
class FaceToHead:
    """The region is a face box; crop the edge's head ROI around it (square, clipped)."""

    margin: float = 0.25

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")

    def locate(self, region: Box, frame_width: int, frame_height: int) -> Box:
        return expand_to_head(region, frame_width, frame_height, margin=self.margin)

    def describe(self) -> str:
        return f"face_to_head(margin={self.margin})"


CropRule = Union[FullFrame, HeadTop, RelativeBox, FaceToHead]  # noqa: UP007 (runtime isinstance)
CropSpec = Union[CropRule, Literal["full", "head_top"]]  # noqa: UP007


def parse_crop(spec: CropSpec) -> CropRule:
    """Turn ``"full"`` / ``"head_top"`` into their rule objects; rules pass through.

    Raises:
        ValueError: any other string or object.
    """
    if isinstance(spec, (FullFrame, HeadTop, RelativeBox, FaceToHead)):
        return spec
    if spec == "full":
        return FullFrame()
    if spec == "head_top":
        return HeadTop()
    raise ValueError(f"unknown crop {spec!r}: use 'full', 'head_top' or a crop rule object")


def crop_box(rule: CropRule, frame_width: int, frame_height: int, region: Box | None) -> Box:
    """The final crop box, in frame pixels, for one frame.

    ``region`` (a tracklet's per-frame box) is clipped to the frame first; ``None`` means the
    whole frame.

    Raises:
        ValueError: the region lies entirely outside the frame, or :class:`FaceToHead` is used
            without a region box.
    """
    if region is None:
        if isinstance(rule, FaceToHead):
            raise ValueError("the face_to_head crop needs a face box for every frame")
        region = Box(0, 0, frame_width, frame_height)
    elif not region.fits_in(frame_width, frame_height):
        clipped = clip_box(
            region.x, region.y, region.right, region.bottom, frame_width, frame_height
        )
        if clipped is None:
            raise ValueError(
                f"box {region.as_tuple()} lies outside the {frame_width}x{frame_height} frame"
            )
        region = clipped
    if isinstance(rule, FaceToHead):
        return rule.locate(region, frame_width, frame_height)
    return rule.locate(region)
