"""edge_agent.margins in the pipeline: weak faces and privacy zones covered, never in the message;
a held face covered where it has moved to."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.deid import Deidentifier
from edge_agent.margins import CoverPlan, Zone, cover_box
from edge_agent.noise import NoiseBank
from edge_agent.pipeline import FrameProcessor
from edge_agent.sources import CapturedFrame
from edge_agent.stats import Stats
from shared.detectors import FaceDetection
from shared.frame_seal import open_frame
from shared.geometry import Box
from shared.model_dir import load_encoder
from shared.tracking import IouTracker
from tests.edge_agent.conftest import CAMERA_ID, CAMERA_KEY, roi_pixels_equal

WIDTH, HEIGHT = 200, 120


class ListDetector:
    """Returns the scripted detections of each call."""

    key = "list"

    def __init__(self, script: list[list[FaceDetection]]) -> None:
        self.script, self.calls = script, 0

    def detect(self, frame):
        call, self.calls = self.calls, self.calls + 1
        return self.script[call] if call < len(self.script) else []


def _frame(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def _processor(toy_model, detector, stats, *, plan=None, velocity=False) -> FrameProcessor:
    encoder, card = load_encoder(toy_model, providers="cpu", threads=1)
    return FrameProcessor(
        detector,
        IouTracker(max_missed=3, hold_growth=0.0, hold_velocity=velocity),
        Deidentifier(encoder, card, NoiseBank(b"noise", card.input_size)),
        stats,
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
        cover_plan=plan,
    )


def test_low_score_face_is_covered_counted_and_not_in_the_message(toy_model):
    weak = Box(20, 20, 24, 30)
    strong = Box(130, 40, 24, 30)
    detector = ListDetector([[FaceDetection(strong, 0.9), FaceDetection(weak, 0.4)]])
    stats = Stats()
    plan = CoverPlan(0.6, 0.3, "blur")
    source = _frame()
    sealed = _processor(toy_model, detector, stats, plan=plan).process(
        CapturedFrame(0, source.copy(), 0.0)
    )
    assert roi_pixels_equal(source, sealed.rgb, weak) == 0
    assert roi_pixels_equal(source, sealed.rgb, strong) == 0
    assert len(sealed.boxes) == 1 and sealed.boxes[0].x < strong.x <= sealed.boxes[0].right
    opened = open_frame(sealed.rgb, {CAMERA_ID: CAMERA_KEY})
    assert len(opened.boxes) == 1  # only the reversible ROI
    assert stats.snapshot()["counters"]["faces_low_confidence"] == 1


def test_low_score_face_without_the_tier_is_left_open(toy_model):
    weak = Box(20, 20, 24, 30)
    detector = ListDetector([[FaceDetection(weak, 0.4)]])
    source = _frame()
    plan = CoverPlan(0.6, None)
    sealed = _processor(toy_model, detector, Stats(), plan=plan).process(
        CapturedFrame(0, source.copy(), 0.0)
    )
    # the detector returned it, so without a tier it is a face for Ue (the edge's detector
    # runs at the normal threshold then and never returns it)
    assert roi_pixels_equal(source, sealed.rgb, weak) == 0 and len(sealed.boxes) == 1


def test_privacy_zone_is_covered_every_frame_and_counted(toy_model):
    zone = Zone(((0.5, 0.0), (1.0, 0.0), (1.0, 0.5), (0.5, 0.5)), cover="black")
    stats = Stats()
    processor = _processor(toy_model, ListDetector([]), stats, plan=CoverPlan(0.6, zones=[zone]))
    region = Box(100, 0, 100, 60)
    for index in range(2):
        source = _frame(index)
        sealed = processor.process(CapturedFrame(index, source.copy(), 0.0))
        area = sealed.rgb[region.y : region.bottom, region.x : region.right]
        assert area.max() <= 1 and sealed.boxes == ()  # black (LSBs carry the message)
        assert roi_pixels_equal(source, sealed.rgb, Box(0, 60, 200, 60)) > 0.9 * 200 * 60
    assert stats.snapshot()["counters"]["zones_covered"] == 2


def test_zone_with_bad_points_raises():
    with pytest.raises(ValueError):
        Zone(((0.0, 0.0), (1.5, 0.0), (1.0, 1.0)))


def test_moving_face_held_after_a_miss_is_covered_where_it_moved(toy_model):
    # ground truth: the face moves 6 px right per frame; the detector misses frame 2
    truth = [Box(40 + 6 * i, 40, 20, 24) for i in range(3)]
    script = [[FaceDetection(truth[0], 0.9)], [FaceDetection(truth[1], 0.9)], []]
    for velocity, leaks in ((False, True), (True, False)):
        processor = _processor(toy_model, ListDetector(script), Stats(), velocity=velocity)
        processor.head_margin = 0.0  # the ROI is the box: the hold alone must cover the face
        for index in range(3):
            source = _frame(index)
            sealed = processor.process(CapturedFrame(index, source.copy(), 0.0))
        open_pixels = roi_pixels_equal(source, sealed.rgb, truth[2])
        assert (open_pixels > 0) is leaks, (velocity, open_pixels)


def _laplacian_energy(image: np.ndarray) -> float:
    return float(np.mean(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F) ** 2))


@pytest.mark.parametrize("side", [9, 40, 401, 617])
def test_blur_cover_leaves_no_fine_detail_at_any_box_size(side):
    """A blurred box is a smooth enlargement of at most 4 x 4 pixels: a checkerboard's detail,
    and a random texture's, are gone (Laplacian energy under 1 % of the patch's)."""
    rng = np.random.default_rng(side)
    checker = ((np.arange(side)[:, None] + np.arange(side + 5)[None, :]) % 2 * 255).astype(np.uint8)
    for patch in (
        np.repeat(checker[:, :, None], 3, axis=2),
        rng.integers(0, 256, (side, side + 5, 3), dtype=np.uint8),
    ):
        frame = np.zeros((side + 20, side + 30, 3), np.uint8)
        frame[10 : 10 + side, 10 : 15 + side] = patch
        cover_box(frame, Box(10, 10, side + 5, side), "blur")
        out = frame[10 : 10 + side, 10 : 15 + side]
        assert _laplacian_energy(out) < 0.01 * _laplacian_energy(patch)
        assert frame[:10].max() == 0 and frame[:, :10].max() == 0  # nothing outside the box
