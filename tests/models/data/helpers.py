"""Small image-writing helpers for the data tests (real JPEG/PNG files via OpenCV)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_image(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image (format from the suffix), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), path
    return path


def solid(h: int, w: int, colour: tuple[int, int, int]) -> np.ndarray:
    return np.full((h, w, 3), colour, dtype=np.uint8)


def noise_image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
