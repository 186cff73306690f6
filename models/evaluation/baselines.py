"""The paper's baselines as ROI anonymizers, measured through the same detection-kept and
anonymity measures as UU-Net.

An ROI anonymizer is a callable ``anonymizer(patches) -> patches`` (uint8 RGB, each output the
size of its input) with a ``name``. Baselines:

* ``downup:N``: down-sample the ROI to ``N x N`` (area) and back up (bilinear): the
  low-resolution baseline of Ryoo et al. (a blur);
* ``pixelate:N``: the ROI as an ``N x N`` mosaic (area down, nearest up);
* ``superpixels:K``: about ``K`` SLIC superpixels (CIELAB + position, compactness 10) each
  painted with its mean colour: the superpixel baseline of Butler et al. (8 and 16 in the
  paper);
* ``deface``: deface 1.5's default replacement: a box blur whose kernel is half the box, inside
  the ellipse inscribed in the box (``deface --replacewith blur``; deface grows CenterFace's box
  by 1.3, the head ROI here grows the face box by 1.5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import cv2
import numpy as np

__all__ = [
    "DEFAULT_BASELINES",
    "RoiAnonymizer",
    "deface_blur",
    "downup",
    "make_baseline",
    "pixelate",
    "superpixels",
]


class RoiAnonymizer(Protocol):
    """ROI patches in (uint8 RGB, any sizes), anonymized patches of the same sizes out."""

    name: str

    def __call__(self, patches: Sequence[np.ndarray]) -> list[np.ndarray]: ...


DEFAULT_BASELINES = (
    "downup:8",
    "downup:16",
    "pixelate:8",
    "pixelate:16",
    "superpixels:8",
    "superpixels:16",
    "deface",
)


def downup(patch: np.ndarray, cells: int) -> np.ndarray:
    """Down-sample to ``cells x cells`` (area), up-sample back (bilinear)."""
    height, width = patch.shape[:2]
    small = cv2.resize(patch, (cells, cells), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def pixelate(patch: np.ndarray, cells: int) -> np.ndarray:
    """An ``cells x cells`` mosaic (area down, nearest up)."""
    height, width = patch.shape[:2]
    small = cv2.resize(patch, (cells, cells), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def superpixels(
    patch: np.ndarray, count: int, compactness: float = 10.0, iterations: int = 10
) -> np.ndarray:
    """About ``count`` SLIC superpixels (Achanta et al.) painted with their mean colour.

    SLIC on a copy of at most 64x64 pixels: CIELAB (L in 0-100), centres seeded on a grid of
    step ``S``, each pixel assigned to the nearest centre in its ``2S x 2S`` window by
    ``sqrt(d_lab^2 + (d_xy / S)^2 * compactness^2)``, then small disconnected pieces merged into
    their surroundings; labels are enlarged back (nearest).
    """
    height, width = patch.shape[:2]
    work_w, work_h = min(width, 64), min(height, 64)
    small = cv2.resize(patch, (work_w, work_h), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB).reshape(-1, 3)
    grid = max(1, round(np.sqrt(count)))
    step = np.sqrt(work_w * work_h / float(grid * grid))
    ys, xs = np.mgrid[0:work_h, 0:work_w].astype(np.float32)
    position = np.stack([ys.ravel(), xs.ravel()], axis=1)
    cy = (np.arange(grid) + 0.5) * work_h / grid
    cx = (np.arange(grid) + 0.5) * work_w / grid
    centre_pos = np.array([(y, x) for y in cy for x in cx], dtype=np.float32)
    seeds = [int(y) * work_w + int(x) for y, x in centre_pos]
    centre_lab = lab[seeds].copy()
    labels = np.zeros(len(lab), dtype=np.int64)
    for _ in range(iterations):
        colour = ((lab[:, None, :] - centre_lab[None, :, :]) ** 2).sum(axis=2)
        offset = position[:, None, :] - centre_pos[None, :, :]
        spatial = (offset**2).sum(axis=2) / step**2 * compactness**2
        distance = colour + spatial
        # Outside the window: only when no centre is inside it (centres drift), nearest wins.
        distance[(np.abs(offset) > step).any(axis=2)] += 1e9
        labels = distance.argmin(axis=1)
        for k in range(len(centre_lab)):
            members = labels == k
            if members.any():
                centre_lab[k] = lab[members].mean(axis=0)
                centre_pos[k] = position[members].mean(axis=0)
    labels = _enforce_connectivity(labels.reshape(work_h, work_w), step).ravel()
    flat = small.reshape(-1, 3).astype(np.float32)
    painted = np.zeros_like(flat)
    for k in np.unique(labels):
        painted[labels == k] = flat[labels == k].mean(axis=0)
    painted_img = np.rint(painted).astype(np.uint8).reshape(work_h, work_w, 3)
    return cv2.resize(painted_img, (width, height), interpolation=cv2.INTER_NEAREST)


def _enforce_connectivity(labels: np.ndarray, step: float) -> np.ndarray:
    """SLIC's last step: every connected piece of a label smaller than a quarter of a grid cell
    joins the label that surrounds it most (as scikit-image's ``enforce_connectivity``)."""
    labels = labels.copy()
    min_size = max(1, int(step * step / 4))
    kernel = np.ones((3, 3), np.uint8)
    for k in np.unique(labels):
        count, pieces = cv2.connectedComponents((labels == k).astype(np.uint8), connectivity=4)
        for piece in range(1, count):
            mask = pieces == piece
            if mask.sum() >= min_size:
                continue
            ring = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool) & ~mask
            around = labels[ring]
            around = around[around != k]
            if around.size:
                labels[mask] = np.bincount(around).argmax()
    return labels


def deface_blur(patch: np.ndarray) -> np.ndarray:
    """deface's default replacement on a whole ROI: box blur (kernel half the box) inside the
    inscribed ellipse; the corners keep their pixels."""
    height, width = patch.shape[:2]
    blurred = cv2.blur(patch, (max(1, width // 2), max(1, height // 2)))
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.ellipse(mask, (width // 2, height // 2), (width // 2, height // 2), 0, 0, 360, 1, -1)
    out = patch.copy()
    out[mask.astype(bool)] = blurred[mask.astype(bool)]
    return out


class _PatchwiseBaseline:
    def __init__(self, name: str, function: Callable[[np.ndarray], np.ndarray]) -> None:
        self.name = name
        self._function = function

    def __call__(self, patches: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self._function(np.ascontiguousarray(p)) for p in patches]


def make_baseline(spec: str) -> RoiAnonymizer:
    """A baseline by name: ``downup:N``, ``pixelate:N``, ``superpixels:K``, ``deface``.

    Raises:
        ValueError: an unknown name or a bad parameter.
    """
    kind, _, value = spec.partition(":")
    if kind == "deface" and not value:
        return _PatchwiseBaseline(spec, deface_blur)
    functions = {"downup": downup, "pixelate": pixelate, "superpixels": superpixels}
    if kind not in functions:
        raise ValueError(
            f"unknown baseline {spec!r}; known: downup:N, pixelate:N, superpixels:K, deface"
        )
    try:
        parameter = int(value)
    except ValueError:
        raise ValueError(f"baseline {spec!r} needs an integer parameter, e.g. {kind}:8") from None
    if not 1 <= parameter <= 256:
        raise ValueError(f"baseline {spec!r}: parameter must be in 1..256")
    function = functions[kind]
    return _PatchwiseBaseline(spec, lambda patch: function(patch, parameter))
