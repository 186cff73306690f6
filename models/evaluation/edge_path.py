"""The edge's own frame path, run by the evaluation on real clips.

:func:`build_edge_processor` makes the :class:`edge_agent.pipeline.FrameProcessor` that the
daemon runs (:func:`edge_agent.app.build_processor`: detector with its low-light pass, IoU
tracker, head margin, ``Ue`` with one noise plane per track, feathered paste, ROI message)
from the **edge's default settings**, not a copy of them, and not the environment's
``UUNET_EDGE_*`` overrides. Two things differ from a camera, neither in the frame path:

* the model is *staged*: ``ue.onnx`` linked into a temporary directory next to a copy of the
  card with the codec's composition (so a composition override of the feather sweep reaches
  the edge as a card would);
* the privacy gate (:mod:`edge_agent.model_check`) cannot refuse: the evaluation is what
  measures those figures. Its thresholds are set to their maximum (1.0) and a card without a
  measured ``x_a`` AUC is staged as "unmeasured, assumed fully linkable" (AUC 1.0). The model
  directory itself is never written.

:func:`run_clip` feeds a clip's frames to the processor and keeps, per frame, the source, the
public frame (what a viewer sees) and the replaced ROIs with their tracks.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.app import build_processor
from edge_agent.config import EdgeSettings, MetricsSettings, ModelSettings, PrivacySettings
from edge_agent.model_check import ModelRefusedError, check_privacy_figures
from edge_agent.pipeline import FrameProcessor
from edge_agent.sources import CapturedFrame
from models.evaluation.deid import UUNetCodec, noise_secret
from models.evaluation.errors import EvaluationError
from shared.detectors import FaceDetector
from shared.geometry import Box
from shared.model_dir import CARD_FILE, ENCODER_FILE
from shared.tracking import Track
from shared.video_io import probe, read_frames

__all__ = [
    "EVALUATION_CAMERA_KEY",
    "ClipRun",
    "build_edge_processor",
    "evaluation_settings",
    "run_clip",
    "staged_card",
]

log = logging.getLogger(__name__)

#: The camera key of the evaluation's v1 messages (not a secret: nothing leaves the run).
EVALUATION_CAMERA_KEY = b"uunet-evaluation-camera-key-not-a-secret"
#: The x<->a' AUC a staged card declares for a model not yet measured: fully linkable.
UNMEASURED_AUC = 1.0


def evaluation_settings(model_dir: Path, *, threads: int = 1) -> EdgeSettings:
    """The edge's default settings with this model on the CPU, metrics off, and the privacy
    gate's thresholds at their maximum, a public decoder allowed (module docstring: the
    evaluation measures the model, it does not deploy it). The environment is not read."""
    return EdgeSettings.model_construct(
        model=ModelSettings(dir=model_dir, providers=["cpu"], threads=threads),
        privacy=PrivacySettings(max_x_a_auc=1.0, max_a_a_noise_auc=1.0, allow_public_decoder=True),
        metrics=MetricsSettings(enabled=False),
    )


def staged_card(codec: UUNetCodec) -> dict[str, Any]:
    """The card the staged model carries: the codec's card with its composition, and an
    "unmeasured" privacy figure when the card has none (module docstring)."""
    card = copy.deepcopy(codec.card.raw)
    card["composition"] = codec.composition.to_card()
    try:
        check_privacy_figures(card, max_x_a_auc=1.0, max_a_a_noise_auc=1.0)
    except ModelRefusedError:
        metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
        card["metrics"] = {
            **metrics,
            "recognition": {"unmeasured": {"x_a": {"auc": UNMEASURED_AUC}}},
            "note": "staged by the evaluation: not measured yet, assumed fully linkable",
        }
        log.warning("model %s has no measured privacy figures yet", codec.card.model_id)
    return card


def build_edge_processor(
    codec: UUNetCodec, *, detector: FaceDetector | None = None
) -> FrameProcessor:
    """The edge's frame processor for the codec's model and composition, with the edge's
    defaults; its noise planes are the codec's (same seed, plane ``i`` for track ``i``).

    Raises:
        shared.model_dir.ModelDirError, shared.onnx_runner.ModelLoadError: the model cannot
            be loaded.
        shared.detectors.DetectorUnavailableError: the edge's detector is not installed.
    """
    with tempfile.TemporaryDirectory(prefix="uunet-eval-model-") as tmp:
        staged = Path(tmp)
        source = (codec.model_dir / ENCODER_FILE).resolve()
        try:
            os.symlink(source, staged / ENCODER_FILE)
        except OSError:
            shutil.copyfile(source, staged / ENCODER_FILE)
        (staged / CARD_FILE).write_text(json.dumps(staged_card(codec)), encoding="utf-8")
        # The ONNX session is created here, so the staged files may go afterwards.
        return build_processor(
            evaluation_settings(staged, threads=codec.threads),
            detector=detector,
            key=EVALUATION_CAMERA_KEY,
            noise_secret=noise_secret(codec.seed),
        )


@dataclass
class ClipRun:
    """A clip through the edge: per frame the source ``x``, the public frame (sealed, as the
    edge emits it), the ROIs ``Ue`` replaced and the tracks they belong to (same order)."""

    path: Path
    fps: Fraction
    sources: list[np.ndarray] = field(default_factory=list)
    publics: list[np.ndarray] = field(default_factory=list)
    boxes: list[list[Box]] = field(default_factory=list)
    tracks: list[list[Track]] = field(default_factory=list)
    blacked: list[list[Box]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.sources)

    @property
    def rois(self) -> int:
        return sum(len(b) for b in self.boxes)

    @property
    def held_rois(self) -> int:
        return sum(1 for tracks in self.tracks for t in tracks if t.missed)


def run_clip(path: Path, processor: FrameProcessor, *, max_frames: int) -> ClipRun:
    """Run at most ``max_frames`` frames of ``path`` through ``processor``.

    Raises:
        shared.video_io.VideoDecodeError: the file is not a readable video.
        EvaluationError: the edge dropped a frame (its seal failed).
    """
    run = ClipRun(path, probe(path).fps)
    for video_frame in read_frames(path):
        if video_frame.index >= max_frames:
            break
        x = video_frame.rgb
        sealed = processor.process(CapturedFrame(video_frame.index, x.copy(), time.monotonic()))
        if sealed is None:
            raise EvaluationError(f"{path.name}: the edge dropped frame {video_frame.index}")
        tracks = processor.tracker.tracks if sealed.boxes else []
        if len(tracks) != len(sealed.boxes):
            raise EvaluationError(
                f"{path.name}: frame {video_frame.index}: {len(sealed.boxes)} ROIs for "
                f"{len(tracks)} tracks"
            )
        run.sources.append(x)
        run.publics.append(sealed.rgb)
        run.boxes.append(list(sealed.boxes))
        run.tracks.append(tracks)
        run.blacked.append(list(sealed.blacked))
    return run
