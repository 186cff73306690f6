"""Measure the model card's figures from the command line (see
:mod:`models.evaluation.card_metrics`), for ``models/weights/<name>/card.json``.

    python -m models.evaluation.card --model models/weights/default \\
        --identities ../shared/media/identities/orl_att_faces \\
        --identities ../shared/media/identities/faceapi_bbt \\
        --video ../shared/media/videos/hamilton_640x360.mp4 --out card_figures.json

``--video`` (repeatable) adds the figures only video shows, through the edge's frame path:
``recognition.<recognizer>.a_a_track`` and ``public_face.border_step_ratio``. ``--detectors``
(default ``yunet,centerface``; ``''`` for none) measure ``public_face.detection_by_roi_size``.

Faces are head crops cut the way the edge cuts them (YuNet, ``expand_to_head``); the identity
sets are pooled (identities are prefixed with their set's folder name). Use only people that
were not used in training (``--exclude`` names identities to leave out). Prints the JSON and
writes it to ``--out`` when given. Exit status 0, or 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.evaluation.card_metrics import DEFAULT_ROI_SIZES, measure_clips, measure_model
from models.evaluation.deid import UUNetCodec
from models.evaluation.detectors import edge_detector, leak_detector, photo_detector
from models.evaluation.errors import EvaluationError
from models.evaluation.faces import load_identity_faces
from models.evaluation.recognizers import make_recognizers
from models.evaluation.report import json_ready
from shared.model_dir import ModelDirError
from shared.onnx_runner import ModelLoadError, ModelSignatureError

__all__ = ["main", "measure_card", "pool_identity_faces"]


def pool_identity_faces(
    identity_dirs: Sequence[Path],
    *,
    max_identities: int | None = None,
    max_per_identity: int | None = 10,
    exclude: Sequence[str] = (),
) -> tuple[dict[str, list[np.ndarray]], dict[str, dict[str, int]]]:
    """Head crops of every identity folder, pooled (``"<folder name>/<identity>"``), and per
    folder the counts of identities, faces and images without a face.

    Raises:
        EvaluationError: a folder is missing or has fewer than 2 usable identities.
    """
    detector = photo_detector()
    pooled: dict[str, list[np.ndarray]] = {}
    sources: dict[str, dict[str, int]] = {}
    for folder in identity_dirs:
        faces = load_identity_faces(
            folder,
            detector,
            max_identities=max_identities,
            max_per_identity=max_per_identity,
            exclude=dict.fromkeys(exclude),
        )
        for identity, crops in faces.faces.items():
            pooled[f"{folder.name}/{identity}"] = crops
        sources[str(folder)] = {
            "identities": len(faces.faces),
            "faces": faces.count,
            "images_without_face": len(faces.skipped),
        }
    return pooled, sources


def measure_card(
    model: Path,
    identity_dirs: Sequence[Path],
    *,
    recognizers: Sequence[str] = ("sface", "dlib"),
    max_identities: int | None = None,
    max_per_identity: int | None = 10,
    exclude: Sequence[str] = (),
    roi_sizes: Sequence[int] = DEFAULT_ROI_SIZES,
    seed: int = 0,
    detectors: Sequence[str] = ("yunet", "centerface"),
    videos: Sequence[Path] = (),
    max_frames: int = 150,
) -> dict[str, Any]:
    """Pool head crops of the identity folders and run :func:`measure_model` on them, and
    :func:`measure_clips` on ``videos`` (merged into ``recognition`` and ``public_face``).

    ``detectors``: ``yunet`` (the edge's, with its default settings; it also makes the
    replaced ROIs) and/or ``centerface``.

    Raises:
        EvaluationError: a folder is missing or too few identities remain; an unknown detector.
        shared.model_dir.ModelDirError (and ONNX loading errors): a bad model directory.
        shared.detectors.DetectorUnavailableError: a detector's package is missing.
        shared.video_io.VideoDecodeError: a video is not readable.
    """
    makers = {"yunet": edge_detector, "centerface": leak_detector}  # yunet: the edge's own
    unknown = sorted(set(detectors) - set(makers))
    if unknown:
        raise EvaluationError(f"unknown detector(s) {unknown}; known: yunet, centerface")
    pooled, sources = pool_identity_faces(
        identity_dirs,
        max_identities=max_identities,
        max_per_identity=max_per_identity,
        exclude=exclude,
    )
    made = make_recognizers(recognizers)
    codec = UUNetCodec(model, seed=seed)
    edge = edge_detector() if detectors else None  # the edge's boxes make the replaced ROIs
    measuring = [edge if name == "yunet" else makers[name]() for name in detectors]
    result = measure_model(
        codec,
        pooled,
        recognizers=made,
        roi_sizes=roi_sizes,
        seed=seed,
        detectors=measuring,
        edge=edge,
    )
    result["evaluation_data"] = sources
    if videos:
        clips = measure_clips(codec, videos, recognizers=made, max_frames=max_frames, seed=seed)
        for name, figures in clips.pop("a_a_track").items():
            result["recognition"][name]["a_a_track"] = figures
        result["public_face"]["border_step_ratio"] = clips.pop("border_step_ratio")
        result["public_face"]["video"] = clips
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, measure, print (and write) the JSON; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m models.evaluation.card")
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    parser.add_argument(
        "--identities", type=Path, action="append", required=True, help="identity folder"
    )
    parser.add_argument("--recognizers", default="sface,dlib", help="comma list of sface,dlib")
    parser.add_argument("--max-identities", type=int, default=None, help="per folder")
    parser.add_argument("--max-per-identity", type=int, default=10)
    parser.add_argument("--exclude", action="append", default=[], help="identity to leave out")
    parser.add_argument(
        "--detectors", default="yunet,centerface", help="comma list of yunet,centerface"
    )
    parser.add_argument(
        "--video", type=Path, action="append", default=[], help="clip for the video figures"
    )
    parser.add_argument("--max-frames", type=int, default=150, help="frames per video")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument(
        "--write-card",
        action="store_true",
        help="store the figures as 'metrics' in <model>/card.json (with this command line)",
    )
    args = parser.parse_args(argv)
    try:
        result = measure_card(
            args.model,
            args.identities,
            recognizers=[n for n in args.recognizers.split(",") if n],
            max_identities=args.max_identities,
            max_per_identity=args.max_per_identity,
            exclude=args.exclude,
            seed=args.seed,
            detectors=[n for n in args.detectors.split(",") if n],
            videos=args.video,
            max_frames=args.max_frames,
        )
    except (
        EvaluationError,
        ModelDirError,
        ModelLoadError,
        ModelSignatureError,
        ValueError,
        ImportError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 (CLI output)
        return 2
    text = json.dumps(json_ready(result), indent=2, allow_nan=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    if args.write_card:
        write_card_metrics(args.model, json.loads(text), argv)
    print(text)  # noqa: T201
    return 0


def write_card_metrics(model: Path, metrics: dict[str, Any], argv: Sequence[str] | None) -> None:
    """Store measured figures in ``<model>/card.json`` under ``metrics`` (replacing old ones).

    Raises:
        ModelDirError: the card is missing or unreadable.
    """
    path = model / "card.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path}: cannot update the model card: {exc}") from exc
    command = " ".join(["python -m models.evaluation.card", *(argv or sys.argv[1:])])
    card["metrics"] = {"command": command, **metrics}
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
