"""Check that the recognizers separate real people: AUC and d' of genuine/impostor scores over
an identity folder (every pair of images once).

    python -m models.evaluation.check_recognizers ../shared/media/identities/orl_att_faces

By default every image is used as it is (the face crops of ORL, faceapi_bbt); ``--head-crop``
first cuts the head ROI the edge would (YuNet), for photos with more around the face.
Exit status 0, or 2 for a missing/malformed folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.evaluation.detectors import photo_detector
from models.evaluation.errors import EvaluationError
from models.evaluation.faces import load_identity_faces
from models.evaluation.media import list_identity_images, read_rgb
from models.evaluation.metrics import genuine_impostor_scores, summarise_scores
from models.evaluation.recognizers import make_recognizers

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line of figures per recognizer; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m models.evaluation.check_recognizers")
    parser.add_argument("identities", type=Path, help="<dir>/<person>/<image> folder")
    parser.add_argument("--recognizers", default="sface,dlib", help="comma list of sface,dlib")
    parser.add_argument("--head-crop", action="store_true", help="cut head ROIs with YuNet first")
    parser.add_argument("--max-identities", type=int, default=None)
    parser.add_argument("--max-per-identity", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        if args.head_crop:
            loaded = load_identity_faces(
                args.identities,
                photo_detector(),
                max_identities=args.max_identities,
                max_per_identity=args.max_per_identity,
            ).faces
        else:
            listed = list_identity_images(
                args.identities, min_images=2, max_per_identity=args.max_per_identity
            )
            names = list(listed)[: args.max_identities]
            loaded = {k: [read_rgb(p) for p in listed[k]] for k in names}
        faces = [f for crops in loaded.values() for f in crops]
        labels = [k for k, crops in loaded.items() for _ in crops]
        recognizers = make_recognizers([n for n in args.recognizers.split(",") if n])
    except (EvaluationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 (CLI output)
        return 2
    print(f"{args.identities}: {len(faces)} images of {len(loaded)} identities")  # noqa: T201
    for recognizer in recognizers:
        started = time.monotonic()
        geometries = [recognizer.locate(f) for f in faces]
        embeddings = recognizer.embed(faces, geometries)
        figures = summarise_scores(genuine_impostor_scores(embeddings, labels))
        print(  # noqa: T201
            f"{recognizer.name}: AUC {figures['auc']:.4f}  d' {figures['d_prime']:.2f}  "
            f"genuine {figures['genuine_pairs']}  impostor {figures['impostor_pairs']}  "
            f"landmarks detected {np.mean([g.detected for g in geometries]):.3f}  "
            f"{time.monotonic() - started:.0f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
