"""MTCNN (facenet-pytorch), the detector of the UU-Net paper; an optional plug-in.

facenet-pytorch pins an old torch, so it is not part of the runtime extras: install the
``mtcnn`` extra (``scripts/setup.sh edge,mtcnn`` installs torch 2.14.1 + torchvision 0.29.1
and then ``facenet-pytorch==2.6.0`` without its pins). torch is imported only when this
detector is created. Its detections carry no landmarks (``landmarks`` is ``None``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from shared.detectors.base import (
    DetectorOptions,
    DetectorUnavailableError,
    FaceDetector,
    RawDetection,
)

__all__ = ["MtcnnDetector"]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the 'mtcnn' detector needs facenet-pytorch and torch: run `scripts/setup.sh edge,mtcnn`, "
    "or `pip install 'uunet[mtcnn]'` then `pip install --no-deps facenet-pytorch==2.6.0`"
)


def _import_mtcnn() -> tuple[Any, Any]:
    try:
        import torch
        from facenet_pytorch import MTCNN
    except ImportError as exc:  # torch, torchvision or facenet_pytorch missing or broken
        raise DetectorUnavailableError(f"{INSTALL_HINT} ({exc})") from exc
    return torch, MTCNN


class MtcnnDetector(FaceDetector):
    """Face detection with facenet-pytorch's MTCNN on the CPU (or ``device``).

    Args:
        options: common detector options (``min_face_size`` also sets MTCNN's pyramid floor).
        device: a torch device name.
        threads: torch intra-op threads (``None``: torch's default).

    Raises:
        DetectorUnavailableError: facenet-pytorch or torch is not installed.
    """

    key = "mtcnn"

    def __init__(
        self,
        options: DetectorOptions | None = None,
        *,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        super().__init__(options)
        torch, mtcnn_class = _import_mtcnn()
        if threads is not None:
            torch.set_num_threads(threads)
        self._torch = torch
        self._net = mtcnn_class(
            keep_all=True,
            device=device,
            min_face_size=max(12, self.options.min_face_size),
            post_process=False,
        )

    def _detect(self, frame: np.ndarray) -> list[RawDetection]:
        with self._torch.inference_mode():
            boxes, probs = self._net.detect(frame)
        if boxes is None:
            return []
        # With numpy 2 facenet-pytorch returns object arrays: convert row by row.
        rows = []
        for box, prob in zip(boxes, probs, strict=True):
            x0, y0, x1, y1 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
            rows.append((x0, y0, x1, y1, float(prob)))
        return rows
