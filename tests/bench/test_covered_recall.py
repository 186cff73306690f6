"""bench/covered_recall.py: faces covered through the edge's own path, look-ahead included."""

from __future__ import annotations

import numpy as np
import pytest

from bench.covered_recall import Counts, agent_cover, count_covered
from edge_agent.cli import load_edge_settings
from shared.detectors import DetectorOptions, FaceDetection, FaceDetector
from shared.geometry import Box
from tests.toy_models import write_toy_model_dir

FACE = Box(100, 80, 40, 40)
MARKS = np.array([[110, 95], [130, 95], [120, 105], [112, 112], [128, 112]], np.float32)


class _FoundFrom(FaceDetector):
    """Finds ``FACE`` (with ``score``) from its ``first``-th call on, nothing before (the agent
    runs the detector once per frame, in order); at the low tier's threshold, as the edge's."""

    key = "scripted"

    def __init__(self, first: int, score: float = 0.9) -> None:
        super().__init__(DetectorOptions(score_threshold=0.3))
        self.first, self.score, self.calls = first, score, 0

    def _detect(self, frame):
        self.calls += 1
        if self.calls <= self.first:
            return []
        return [(100.0, 80.0, 140.0, 120.0, self.score, MARKS)]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    model = write_toy_model_dir(tmp_path_factory.mktemp("model"), decoder=False)

    def make(lookahead: int):
        return load_edge_settings(
            None,
            {
                "model": {"dir": str(model), "threads": 1},
                "metrics": {"enabled": False},
                "margins": {"lookahead_frames": lookahead},
            },
        )

    return make


def _clip(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(count)]


def _truth(count: int) -> list[list[FaceDetection]]:
    return [[FaceDetection(FACE, 0.9, MARKS)] for _ in range(count)]


@pytest.mark.parametrize(("lookahead", "covered"), [(0, 12), (5, 17)])
def test_a_face_found_late_is_covered_from_the_look_ahead_back(settings, lookahead, covered):
    # found from frame 8 of 20: held and tracked after, back-filled into the 5 frames before
    result = agent_cover(_clip(20), settings(lookahead), _FoundFrom(8))
    assert sorted(result.boxes) == list(range(20))  # no frame dropped
    counts = count_covered(_truth(20), result.boxes)
    assert counts == Counts(20, covered, covered, covered)


def test_a_weak_detection_the_agent_blurred_counts_as_covered(settings):
    # 0.4: under score_threshold (no Ue ROI, nothing in the message), over the low tier's 0.3
    frames = _clip(6)
    result = agent_cover(frames, settings(0), _FoundFrom(0, score=0.4))
    assert result.stats["counters"]["faces_low_confidence"] == 6
    assert result.stats["counters"].get("faces_deidentified", 0) == 0
    assert count_covered(_truth(6), result.boxes).covered == 6


def test_counts_landmarks_strict_share_and_centre_apart():
    tall = FaceDetection(Box(100, 40, 40, 80), 0.9, MARKS)  # forehead above the ROI's top
    roi = Box(90, 70, 60, 60)  # holds the landmarks and the centre, 62 % of the box
    assert count_covered([[tall]], {0: [roi]}) == Counts(1, 1, 0, 1)
    elsewhere = Box(200, 150, 60, 60)
    assert count_covered([[tall]], {0: [elsewhere]}) == Counts(1, 0, 0, 0)
    # no landmarks: covered means at least 90 % of the box inside
    plain = FaceDetection(Box(95, 75, 50, 50), 0.9)
    assert count_covered([[plain]], {0: [Box(90, 70, 60, 60)]}) == Counts(1, 1, 1, 1)
    # a face cut by the frame's right edge (x 320): its landmarks beyond are not looked for
    cut = FaceDetection(Box(280, 100, 40, 40), 0.9, MARKS + np.float32([200, 5]))
    assert count_covered([[cut]], {0: [Box(270, 90, 50, 60)]}) == Counts(1, 1, 1, 1)
    # a frame the agent dropped left nothing to see
    assert count_covered([[tall], [tall]], {0: [roi]}) == Counts(2, 2, 1, 2)
