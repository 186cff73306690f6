"""The evaluation runs the edge's own frame path: same pixels as the edge's Deidentifier, the
edge's default settings, a model card the evaluation may not yet have measured."""

import dataclasses
import json

import numpy as np
import pytest

from edge_agent.config import DetectorSettings, MarginSettings
from models.evaluation.deid import UUNetCodec
from models.evaluation.edge_path import build_edge_processor, run_clip, staged_card
from shared.compositing import Composition
from shared.detectors import FaceDetector
from shared.video_io import LosslessWriter
from tests.toy_models import write_toy_model_dir

FEATHERED = {"resample": "smooth", "feather": 0.08, "sizes": [64]}


class _OneFace(FaceDetector):
    key = "one-face"

    def _detect(self, frame):
        return [(40.0, 30.0, 80.0, 78.0, 0.9)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mkv"
    rng = np.random.default_rng(3)
    with LosslessWriter(path, 160, 120, 10, codec="ffv1") as writer:
        for _ in range(3):
            writer.write(rng.integers(0, 256, (120, 160, 3)).astype(np.uint8))
    return path


def test_public_frames_are_the_codecs_edge_paste(tmp_path, clip):
    codec = UUNetCodec(write_toy_model_dir(tmp_path / "toy", composition=FEATHERED))
    processor = build_edge_processor(codec, detector=_OneFace())
    run = run_clip(clip, processor, max_frames=10)
    assert run.frames == 3 and run.rois == 3 and run.held_rois == 0
    assert [t.id for t in run.tracks[2]] == [0]  # one track through the clip
    for x, public, boxes, tracks in zip(
        run.sources, run.publics, run.boxes, run.tracks, strict=True
    ):
        expected = codec.encode_frame(x, boxes, [t.id for t in tracks])
        # Equal up to the LSB plane that carries the sealed ROI message.
        np.testing.assert_array_equal(public >> 1, expected >> 1)
        assert not np.array_equal(public, x)


def test_processor_has_the_edges_default_detector_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("UUNET_EDGE_DETECTOR__MIN_FACE_SIZE", "40")  # not the edge's default
    codec = UUNetCodec(write_toy_model_dir(tmp_path / "toy"))
    processor = build_edge_processor(codec)
    # the edge's detector runs down to the low-confidence tier's threshold (those faces are
    # covered, not replaced); everything else is the edge's default
    expected = dataclasses.replace(
        DetectorSettings().detector_options(),
        score_threshold=MarginSettings().low_score_threshold,
    )
    assert processor.detector.options == expected
    assert processor.detector.options.min_face_size == 10


def test_staged_card_of_an_unmeasured_model_with_composition_override(tmp_path):
    model = write_toy_model_dir(tmp_path / "toy", x_a_auc=None)
    before = (model / "card.json").read_text()
    codec = UUNetCodec(model, composition=Composition("smooth", 0.12, (64,)))
    card = staged_card(codec)
    assert card["composition"] == {"resample": "smooth", "feather": 0.12, "sizes": [64]}
    assert card["metrics"]["recognition"] == {"unmeasured": {"x_a": {"auc": 1.0}}}
    processor = build_edge_processor(codec)  # the edge's gate does not refuse the evaluation
    assert processor.deidentifier.composition.feather == 0.12
    assert (model / "card.json").read_text() == before  # the model directory is not written
    assert json.loads(before).get("metrics") is None
