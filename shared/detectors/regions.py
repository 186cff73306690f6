"""Detection of a large frame at a working size, refined at full resolution where it pays.

A detector's cost grows with its input's pixel count: YuNet on a 1920x1080 frame costs about
ten times what it costs at 640x360. :class:`RegionSearch` (used by
:meth:`~shared.detectors.base.FaceDetector.detect` when ``max_input_side`` shrinks a frame and
``full_res_regions`` is set) does, per frame:

1. the shrunk pass, keeping detections down to ``candidate_threshold`` as *candidates*;
2. a region around each candidate and around each face found (at ``candidate_threshold`` or
   more) in the last ``region_memory`` frames, cut from the full-resolution frame and shrunk
   only so that the face's longer side is at most ``region_face_side`` (``None``: full
   resolution). With ``region_seed_side`` only faces smaller than that in the shrunk image
   seed one: bigger ones the shrunk pass finds by itself. Regions of a similar scale whose
   bounding box costs no more pixels than they do apart are searched as that one box (a crowd:
   one call, not one per face); together they cost at most ``REGION_BUDGET`` of the frame's
   pixels, the smallest faces first (the rest rely on the shrunk pass and the tracker);
3. with ``tile_grid`` set, one tile of the full-resolution frame (each frame the next one), for
   faces too small to be candidates; once found, they seed regions (step 2) in later frames.

The detector never runs on the whole full-resolution frame, so its working set (OpenCV's YuNet
allocates per input size) stays that of a tile. The result: region detections, plus the shrunk
pass's detections (score at least ``score_threshold``) that no region detection overlaps, so
a face the shrunk pass finds is never lost. Detections touching a region's cut edge (not the
frame's) are dropped: the face is cut there, and the region or tile holding it whole reports
it. What the edge runs is measured in edge_agent/README.md (bench/detectors.py --covered).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from shared.detectors.base import FaceDetection, FaceDetector, merge_detections
from shared.geometry import Box, clip_box, iou

__all__ = ["RegionSearch", "tile_boxes"]

log = logging.getLogger(__name__)

#: A region is centred on its face and 2 x this many times the face's longer side wide.
REGION_FACTOR = 2.0
#: Tiles overlap by this many full-resolution pixels (faces up to this size lie whole in one).
TILE_OVERLAP = 64
#: The regions of a frame (tile aside) cost at most this share of its pixels: the cheapest
#: (the smallest faces, which the shrunk pass cannot see) first.
REGION_BUDGET = 0.25
#: A detection this close (pixels) to a region's cut edge is treated as cut.
EDGE_SLACK = 2


@dataclass(frozen=True, slots=True)
class _Region:
    box: Box  # in full-resolution frame pixels
    scale: float  # the region is detected at this scale (<= 1)


def tile_boxes(width: int, height: int, grid: int, overlap: int = TILE_OVERLAP) -> list[Box]:
    """The ``grid x grid`` tiles of a ``width x height`` frame, each grown by ``overlap`` into
    its neighbours, row by row."""
    tiles = []
    for row in range(grid):
        for col in range(grid):
            x0, x1 = col * width // grid, (col + 1) * width // grid
            y0, y1 = row * height // grid, (row + 1) * height // grid
            box = clip_box(x0 - overlap, y0 - overlap, x1 + overlap, y1 + overlap, width, height)
            if box is not None:
                tiles.append(box)
    return tiles


class RegionSearch:
    """Per-detector state (faces seen recently, the next tile) for region refinement.

    Used from one thread at a time, like its detector.
    """

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self._recent: list[tuple[Box, int]] = []  # (face, frames since last seen)
        self._size: tuple[int, int] | None = None
        self._tile = 0

    def detect(self, frame: np.ndarray, image: np.ndarray, scale: float) -> list[FaceDetection]:
        """The faces of ``frame`` given ``image``, the frame shrunk by ``scale``.

        Raises:
            shared.detectors.base.DetectorError: the backend failed.
        """
        options = self.detector.options
        height, width = frame.shape[:2]
        if self._size != (width, height):
            self._recent, self._size, self._tile = [], (width, height), 0
        seed_score = options.candidate_threshold
        candidates = self.detector.passes(
            image, width, height, scale, threshold=min(seed_score, options.score_threshold)
        )
        seeds = [c.box for c in candidates if c.score >= seed_score]
        seeds += [face for face, _ in self._recent]
        if options.region_seed_side is not None:  # bigger faces: the shrunk pass finds them
            seeds = [f for f in seeds if max(f.w, f.h) * scale < options.region_seed_side]
        regions = _merged(self._regions(seeds, width, height))
        regions = _within_budget(regions, REGION_BUDGET * width * height)
        if options.tile_grid:
            tiles = tile_boxes(width, height, options.tile_grid)
            regions.append(_Region(tiles[self._tile % len(tiles)], 1.0))
            self._tile = (self._tile + 1) % len(tiles)
        fine = merge_detections(
            *(self._search(frame, region) for region in regions),
            iou_threshold=options.nms_threshold,
        )
        coarse = [
            c
            for c in candidates
            if c.score >= options.score_threshold
            and all(iou(c.box, f.box) <= options.nms_threshold for f in fine)
        ]
        found = sorted(fine + coarse, key=lambda d: d.score, reverse=True)
        self._remember([d.box for d in found if d.score >= seed_score], options.region_memory)
        return found

    def _regions(self, seeds: list[Box], width: int, height: int) -> list[_Region]:
        """One region per seed face; a seed inside an earlier region of a similar scale adds
        none."""
        options = self.detector.options
        regions: list[_Region] = []
        for face in seeds:
            side = max(face.w, face.h)
            limit = options.region_face_side
            region_scale = 1.0 if limit is None else min(1.0, limit / side)
            if any(_inside(face, r.box) and 0.8 <= r.scale / region_scale <= 1.25 for r in regions):
                continue
            grow = side * REGION_FACTOR
            cx, cy = face.x + face.w / 2.0, face.y + face.h / 2.0
            box = clip_box(cx - grow, cy - grow, cx + grow, cy + grow, width, height)
            if box is not None:
                regions.append(_Region(box, region_scale))
        return regions

    def _search(self, frame: np.ndarray, region: _Region) -> list[FaceDetection]:
        box, scale = region.box, region.scale
        pixels = frame[box.y : box.bottom, box.x : box.right]
        if scale < 1.0:
            size = (max(1, round(box.w * scale)), max(1, round(box.h * scale)))
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        height, width = frame.shape[:2]
        found = self.detector.passes(pixels, width, height, pixels.shape[1] / box.w, (box.x, box.y))
        return [d for d in found if not _touches_cut(d.box, box, width, height)]

    def _remember(self, faces: list[Box], memory: int) -> None:
        kept = [(face, 0) for face in faces]
        for face, age in self._recent:
            if age + 1 < memory and all(iou(face, f) <= 0.3 for f in faces):
                kept.append((face, age + 1))
        self._recent = kept


def _within_budget(regions: list[_Region], budget: float) -> list[_Region]:
    """The cheapest of ``regions`` whose pixels (at their scale) add up to at most ``budget``."""
    kept: list[_Region] = []
    spent = 0.0
    for region in sorted(regions, key=_cost):
        spent += _cost(region)
        if spent > budget:
            log.debug("%d of %d regions over the budget", len(regions) - len(kept), len(regions))
            break
        kept.append(region)
    return kept


def _cost(region: _Region) -> float:
    return region.box.area * region.scale**2


def _merged(regions: list[_Region]) -> list[_Region]:
    """``regions`` with each pair of a similar scale whose bounding box costs no more pixels
    than the two apart replaced by that box (a crowd's overlapping regions: one call)."""
    merged = list(regions)
    joined = True
    while joined:
        joined = False
        for i, a in enumerate(merged):
            for j in range(i + 1, len(merged)):
                b = merged[j]
                if not 0.8 <= a.scale / b.scale <= 1.25:
                    continue
                x0, y0 = min(a.box.x, b.box.x), min(a.box.y, b.box.y)
                x1, y1 = max(a.box.right, b.box.right), max(a.box.bottom, b.box.bottom)
                scale = min(a.scale, b.scale)
                union = Box(x0, y0, x1 - x0, y1 - y0)
                if union.area * scale**2 <= _cost(a) + _cost(b):
                    merged[i] = _Region(union, scale)
                    del merged[j]
                    joined = True
                    break
            if joined:
                break
    return merged


def _inside(face: Box, region: Box) -> bool:
    return (
        face.x >= region.x
        and face.y >= region.y
        and face.right <= region.right
        and face.bottom <= region.bottom
    )


def _touches_cut(face: Box, region: Box, width: int, height: int) -> bool:
    """Whether ``face`` reaches an edge of ``region`` that is not an edge of the frame."""
    return (
        (region.x > 0 and face.x <= region.x + EDGE_SLACK)
        or (region.y > 0 and face.y <= region.y + EDGE_SLACK)
        or (region.right < width and face.right >= region.right - EDGE_SLACK)
        or (region.bottom < height and face.bottom >= region.bottom - EDGE_SLACK)
    )
