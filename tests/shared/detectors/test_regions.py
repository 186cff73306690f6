"""shared.detectors.regions: a shrunk pass refined at full resolution around faces and tiles."""

from __future__ import annotations

import cv2
import numpy as np

from shared.detectors.base import DetectorOptions, FaceDetector
from shared.detectors.regions import tile_boxes
from shared.geometry import Box


class _SeesBigSquares(FaceDetector):
    """Finds bright squares at least 20 px wide in the image it is given (so a 30 px face is
    lost when a 1000 px frame is shrunk to 250 px)."""

    key = "squares"

    def __init__(self, options=None):
        super().__init__(options)
        self.seen_pixels = 0

    def _detect(self, frame):
        self.seen_pixels += frame.shape[0] * frame.shape[1]
        mask = (frame[..., 0] > 200).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [
            (float(x), float(y), float(x + w), float(y + h), 0.9)
            for x, y, w, h, _ in stats[1:count]
            if min(w, h) >= 20
        ]


def _frame(face: Box | None) -> np.ndarray:
    frame = np.zeros((1000, 1000, 3), np.uint8)
    if face is not None:
        frame[face.y : face.bottom, face.x : face.right] = 255
    return frame


def test_detect_shrunk_without_regions_misses_a_small_face():
    detector = _SeesBigSquares(DetectorOptions(max_input_side=250))
    assert detector.detect(_frame(Box(100, 100, 30, 30))) == []


def test_detect_finds_a_small_face_in_a_tile_then_around_its_track():
    options = DetectorOptions(max_input_side=250, full_res_regions=True, tile_grid=2)
    detector = _SeesBigSquares(options)
    first = detector.detect(_frame(Box(100, 100, 30, 30)))  # tile 0 (top left) holds it
    assert [d.box for d in first] == [Box(100, 100, 30, 30)]
    # The next frames search tiles 1 and 2, which do not hold the face: the region around
    # the face found before does, at full resolution, as the face moves.
    for step in (1, 2):
        moved = Box(100 + 10 * step, 100 + 5 * step, 30, 30)
        assert [d.box for d in detector.detect(_frame(moved))] == [moved]


def test_detect_forgets_a_face_after_region_memory_frames():
    detector = _SeesBigSquares(
        DetectorOptions(max_input_side=250, full_res_regions=True, tile_grid=1, region_memory=1)
    )
    assert len(detector.detect(_frame(Box(500, 500, 30, 30)))) == 1  # the one tile: all
    detector.options = DetectorOptions(max_input_side=250, full_res_regions=True, region_memory=1)
    costs = []
    for _ in range(3):  # the face has gone
        before = detector.seen_pixels
        assert detector.detect(_frame(None)) == []
        costs.append(detector.seen_pixels - before)
    shrunk = 250 * 250
    assert costs[0] > shrunk  # its region is still searched for region_memory frames ...
    assert costs[1] == costs[2] == shrunk  # ... then it is forgotten


def test_detect_searches_regions_at_full_resolution_cheaper_than_the_full_frame():
    options = DetectorOptions(max_input_side=250, full_res_regions=True)
    detector = _SeesBigSquares(options)
    found = detector.detect(_frame(Box(400, 400, 100, 100)))  # the shrunk pass finds it
    assert [d.box for d in found] == [Box(400, 400, 100, 100)]  # refined at full resolution
    assert detector.seen_pixels == 250 * 250 + 400 * 400  # shrunk frame + 4x-face region


def test_detect_searches_regions_within_the_budget_smallest_faces_first():
    detector = _SeesBigSquares(DetectorOptions(max_input_side=250, full_res_regions=True))
    calls = []
    detect = detector._detect
    detector._detect = lambda image: calls.append(image.shape[:2]) or detect(image)
    small, big = Box(100, 100, 80, 80), Box(400, 400, 200, 200)
    frame = _frame(small)
    frame[big.y : big.bottom, big.x : big.right] = 255
    found = detector.detect(frame)
    assert sorted((d.box for d in found), key=lambda b: b.x) == [small, big]
    # the small face's region (300 x 300 at the corner) fits in a quarter of the frame; the
    # big one's (800 x 800) does not: the shrunk pass's box stands for it, never a full pass
    assert calls == [(250, 250), (300, 300)]


def test_tile_boxes_cover_the_frame_with_overlap():
    tiles = tile_boxes(1920, 1080, 2, overlap=64)
    assert tiles[0] == Box(0, 0, 1024, 604)
    assert tiles[-1] == Box(896, 476, 1024, 604)


def test_detect_searches_overlapping_regions_in_one_call():
    detector = _SeesBigSquares(DetectorOptions(max_input_side=250, full_res_regions=True))
    calls = []
    detect = detector._detect
    detector._detect = lambda image: calls.append(image.shape[:2]) or detect(image)
    faces = [Box(300, 400, 100, 100), Box(520, 400, 100, 100)]  # regions 400x400, 220 apart
    frame = _frame(None)
    for face in faces:
        frame[face.y : face.bottom, face.x : face.right] = 255
    found = detector.detect(frame)
    assert sorted((d.box for d in found), key=lambda b: b.x) == faces
    # the shrunk frame, then one region holding both faces (not two regions: 320,000 pixels)
    assert calls == [(250, 250), (400, 620)]


def test_region_seed_side_leaves_faces_the_shrunk_pass_sees_to_it():
    options = DetectorOptions(max_input_side=250, full_res_regions=True, region_seed_side=20)
    detector = _SeesBigSquares(options)
    found = detector.detect(_frame(Box(400, 400, 100, 100)))  # 25 px shrunk: no region
    assert [d.box for d in found] == [Box(400, 400, 100, 100)]
    assert detector.seen_pixels == 250 * 250
