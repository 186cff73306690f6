"""The feather sweep: how wide a blended band at the ROI border, chosen by measurement.

A wider feathered band (``composition.feather``, :mod:`shared.compositing`) hides the box
border better but hands more of the original back (hair and outline identify). For each
``feather`` in the sweep, the same model (the card's composition with only ``feather``
replaced, :meth:`~models.evaluation.deid.UUNetCodec.with_composition`) gives:

* **border step ratio** on real clips through the edge's frame path
  (:mod:`models.evaluation.border`, :mod:`models.evaluation.edge_path`), pooled over the clips;
* **x<->a' AUC** of one recognizer on identity photos (the second photo of a person
  de-identified at its native size, each photo a whole ROI, so the band blends ``a`` into the
  photo's own border pixels as the edge blends it into the scene).

Pick the smallest band whose border step ratio is near 1 at an acceptable AUC.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from models.evaluation.border import BorderSteps
from models.evaluation.card_metrics import flatten_faces
from models.evaluation.config import DEFAULT_FEATHERS
from models.evaluation.deid import UUNetCodec
from models.evaluation.edge_path import build_edge_processor, run_clip
from models.evaluation.metrics import genuine_impostor_scores, summarise_scores
from models.evaluation.plots import line_plot
from models.evaluation.recognizers import FaceRecognizer

__all__ = ["DEFAULT_FEATHERS", "feather_sweep"]

log = logging.getLogger(__name__)


def feather_sweep(
    codec: UUNetCodec,
    faces_by_identity: Mapping[str, Sequence[np.ndarray]],
    clips: Sequence[Path],
    recognizer: FaceRecognizer,
    out_dir: Path,
    *,
    feathers: Sequence[float] = DEFAULT_FEATHERS,
    max_frames: int = 150,
    max_impostors: int | None = 100_000,
) -> dict[str, Any]:
    """Border step ratio and x<->a' AUC per feather (see the module docstring); writes the
    plot ``feather_sweep_<recognizer>.png`` into ``out_dir``.

    Raises:
        EvaluationError: too few identities or faces.
        shared.compositing.CompositionError: a feather outside ``[0, 0.5]``.
        shared.video_io.VideoDecodeError: a clip is not a readable video.
    """
    faces, labels = flatten_faces(faces_by_identity)
    ids = list(range(len(faces)))
    geometries = [recognizer.locate(face) for face in faces]
    ex = recognizer.embed(faces, geometries)
    rows = []
    for feather in feathers:
        variant = codec.with_composition(replace(codec.composition, feather=feather))
        log.info("feather %.3f: %d faces, %d clips", feather, len(faces), len(clips))
        ea = recognizer.embed(variant.encode_patches(faces, ids), geometries)
        x_a = summarise_scores(
            genuine_impostor_scores(ex, labels, ea, labels, max_impostors=max_impostors)
        )
        pooled, per_clip = BorderSteps(), {}
        for clip in clips:
            run = run_clip(clip, build_edge_processor(variant), max_frames=max_frames)
            steps = BorderSteps()
            for source, public, boxes in zip(run.sources, run.publics, run.boxes, strict=True):
                steps.add(source, public, boxes)
                pooled.add(source, public, boxes)
            per_clip[clip.name] = steps.as_dict()
        rows.append(
            {
                "feather": feather,
                "x_a": x_a,
                "border_step_ratio": pooled.as_dict(),
                "border_step_ratio_by_clip": per_clip,
            }
        )
    plot = line_plot(
        {
            recognizer.name: (
                [r["border_step_ratio"]["ratio"] for r in rows],
                [r["x_a"]["auc"] for r in rows],
            )
        },
        out_dir / f"feather_sweep_{recognizer.name}.png",
        xlabel="border step ratio (public / source; 1 = no visible border)",
        ylabel="AUC x <-> a' (0.5 = chance)",
        title="feather " + ", ".join(f"{f:g}" for f in feathers),
        point_labels=[f"{f:g}" for f in feathers],
    )
    return {
        "recognizer": recognizer.name,
        "faces": len(faces),
        "identities": len(set(labels)),
        "clips": [c.name for c in clips],
        "max_frames": max_frames,
        "base_composition": codec.composition.to_card(),
        "rows": rows,
        "plots": [plot.name],
    }
