"""Face crops for the measures: head ROIs cut the way the edge cuts them.

The edge detects a face, grows the box into a square head ROI (``shared.geometry.expand_to_head``,
margin 0.25) and feeds that ROI, resized to the model size, to ``Ue``. The card and suite
measures use the same kind of crop from identity photos: :func:`head_crop` pads the photo by
the margin (replicated border, so a face at the border still gets a square ROI), detects the
face nearest the centre, and cuts its square head ROI.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from models.evaluation.errors import EvaluationError
from models.evaluation.media import list_identity_images, read_rgb
from shared.detectors import FaceDetection, FaceDetector
from shared.geometry import HEAD_MARGIN, crop, expand_to_head

__all__ = ["IdentityFaces", "head_crop", "load_identity_faces", "show_at_size"]

log = logging.getLogger(__name__)


@dataclass
class IdentityFaces:
    """Head crops per identity, and the images that gave none (no face found)."""

    faces: dict[str, list[np.ndarray]]
    sources: dict[str, list[Path]]
    skipped: list[Path] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.faces.values())


def show_at_size(face: np.ndarray, size: int) -> np.ndarray:
    """The face as it would appear in a frame as a ``size x size`` ROI (area down, cubic up)."""
    height, width = face.shape[:2]
    if (width, height) == (size, size):
        return face
    shrinking = size <= min(width, height)
    return cv2.resize(
        face, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    )


def head_crop(
    image: np.ndarray, detector: FaceDetector, margin: float = HEAD_MARGIN
) -> np.ndarray | None:
    """The square head ROI of the face nearest the image centre, or ``None`` if none is found.

    Raises:
        shared.detectors.DetectorError: ``image`` is not ``H x W x 3`` uint8, or the detector
            failed.
    """
    height, width = image.shape[:2]
    pad = round(max(height, width) * margin)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    found = detector.detect(padded)
    if not found:
        return None
    centre = np.array([padded.shape[1] / 2.0, padded.shape[0] / 2.0])

    def distance(det: FaceDetection) -> float:
        box = det.box
        return float(np.linalg.norm(np.array([box.x + box.w / 2, box.y + box.h / 2]) - centre))

    best = min(found, key=distance)
    roi = expand_to_head(best.box, padded.shape[1], padded.shape[0], margin=margin)
    return np.ascontiguousarray(crop(padded, roi))


def load_identity_faces(
    root: str | Path,
    detector: FaceDetector,
    *,
    min_images: int = 2,
    max_identities: int | None = None,
    max_per_identity: int | None = None,
    exclude: Mapping[str, object] | None = None,
) -> IdentityFaces:
    """Head crops of every image of an identity folder (``<root>/<identity>/<image>``).

    Images with no detectable face are skipped and listed; identities left with fewer than
    ``min_images`` crops are dropped. ``exclude`` names identities to leave out (for example
    those used in training).

    Raises:
        EvaluationError: the folder is missing/empty, or fewer than 2 identities remain.
    """
    listed = list_identity_images(root, min_images=min_images, max_per_identity=max_per_identity)
    result = IdentityFaces({}, {})
    for identity, files in listed.items():
        if exclude and identity in exclude:
            continue
        if max_identities is not None and len(result.faces) >= max_identities:
            break
        crops, sources = [], []
        for path in files:
            face = head_crop(read_rgb(path), detector)
            if face is None:
                result.skipped.append(path)
                continue
            crops.append(face)
            sources.append(path)
        if len(crops) >= min_images:
            result.faces[identity] = crops
            result.sources[identity] = sources
    if result.skipped:
        log.info("%s: no face found in %d image(s)", root, len(result.skipped))
    if len(result.faces) < 2:
        raise EvaluationError(
            f"{root}: {len(result.faces)} identity(ies) with >= {min_images} detectable faces; "
            "need at least 2"
        )
    return result
