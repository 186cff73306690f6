"""Where a face's landmarks sit, and the similarity transform that aligns them (numpy only).

Shared by the evaluation's recognizers (``models.evaluation.recognizers``, OpenCV warps) and
the training's identity embedding (``models.networks.identity``, a torch warp), so both align
a head ROI the same way.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ARCFACE_TEMPLATE_112", "HEAD_ROI_LANDMARKS", "similarity_transform"]

#: OpenCV FaceRecognizerSF.alignCrop's destination points in the 112x112 crop (ArcFace template).
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
#: Fallback landmarks (fractions of the crop's width and height) in a square head ROI cut as
#: :func:`models.evaluation.faces.head_crop` cuts it: the median of YuNet's landmarks over 827
#: such crops of ORL, LFW and faceapi_bbt faces (measured with this module, 2026-11).
HEAD_ROI_LANDMARKS = np.array(
    [
        [0.3792, 0.4100],
        [0.6153, 0.4106],
        [0.4942, 0.5431],
        [0.3982, 0.6462],
        [0.5992, 0.6489],
    ],
    dtype=np.float64,
)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping ``source`` points onto
    ``target`` (Umeyama 1991, as OpenCV's ``FaceRecognizerSF`` computes it); a ``2 x 3`` matrix.

    Raises:
        ValueError: fewer than 2 points, or the shapes differ.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching K x 2 point sets (K >= 2), got {src.shape}, {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    variance = (src_c**2).sum() / len(src)
    scale = (sigma * d).sum() / variance if variance > 0 else 1.0
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])
