"""Video-like jitter: K slightly different "frames" made from one still image.

A one-frame sequence (a photograph) gives the temporal-consistency loss nothing to compare. The
jitter turns it into a short clip: each view is the image under a small similarity transform
(shift, scale, rotation), a brightness/contrast change and a slight blur, and the parameters move
smoothly along the clip (a straight path between two random end points, plus a little per-frame
noise), as a face tracked in a video drifts from frame to frame. Everything is a function of
``(seed, view, n_views)``: deterministic, and any single view can be made on its own (the
dataset makes one item at a time).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["VideoJitter"]


@dataclass(frozen=True)
class VideoJitter:
    """Ranges of the per-clip drift (end points are drawn in ``[-max, +max]``).

    Attributes:
        max_shift: translation, as a fraction of the image side.
        max_scale: relative zoom (0.04 = +-4%).
        max_rotation_deg: in-plane rotation in degrees.
        max_brightness: additive brightness, fraction of full scale.
        max_contrast: relative contrast change around the image mean.
        max_blur_sigma: Gaussian blur sigma in pixels (drawn in ``[0, max]``).
        frame_noise: per-view random wobble added to the path, as a fraction of each range.
    """

    max_shift: float = 0.03
    max_scale: float = 0.04
    max_rotation_deg: float = 3.0
    max_brightness: float = 0.05
    max_contrast: float = 0.08
    max_blur_sigma: float = 0.6
    frame_noise: float = 0.15

    def __post_init__(self) -> None:
        for name in (
            "max_shift",
            "max_scale",
            "max_rotation_deg",
            "max_brightness",
            "max_contrast",
            "max_blur_sigma",
            "frame_noise",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.max_scale >= 0.5 or self.max_contrast >= 1.0 or self.max_shift >= 0.5:
            raise ValueError("max_scale, max_shift must be < 0.5 and max_contrast < 1")

    def params(self, seed: int, view: int, n_views: int) -> dict[str, float]:
        """The transform of one view: shift_x, shift_y, scale, rotation, brightness, contrast, blur.

        Raises:
            ValueError: ``view`` not in ``[0, n_views)``.
        """
        if not 0 <= view < n_views:
            raise ValueError(f"view {view} outside 0..{n_views - 1}")
        rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x5EED])
        ranges = np.array(
            [
                self.max_shift,
                self.max_shift,
                self.max_scale,
                self.max_rotation_deg,
                self.max_brightness,
                self.max_contrast,
            ]
        )
        start = rng.uniform(-1.0, 1.0, 6) * ranges
        end = rng.uniform(-1.0, 1.0, 6) * ranges
        blur_start, blur_end = rng.uniform(0.0, self.max_blur_sigma, 2)
        t = view / (n_views - 1) if n_views > 1 else 0.0
        wobble = np.random.default_rng([seed & 0xFFFFFFFF, view, 0xF00D]).uniform(-1.0, 1.0, 6)
        values = np.clip(
            start + (end - start) * t + wobble * ranges * self.frame_noise, -ranges, ranges
        )
        return {
            "shift_x": float(values[0]),
            "shift_y": float(values[1]),
            "scale": float(1.0 + values[2]),
            "rotation": float(values[3]),
            "brightness": float(values[4]),
            "contrast": float(1.0 + values[5]),
            "blur": float(blur_start + (blur_end - blur_start) * t),
        }

    def view(self, image: np.ndarray, seed: int, view: int, n_views: int) -> np.ndarray:
        """One view of ``image`` (``H x W x 3`` uint8) -> same shape uint8."""
        p = self.params(seed, view, n_views)
        h, w = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2.0 - 0.5, h / 2.0 - 0.5), p["rotation"], p["scale"])
        matrix[0, 2] += p["shift_x"] * w
        matrix[1, 2] += p["shift_y"] * h
        out = cv2.warpAffine(
            image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        if p["blur"] > 0.05:
            out = cv2.GaussianBlur(out, (0, 0), p["blur"])
        f = out.astype(np.float32)
        mean = f.mean()
        f = (f - mean) * p["contrast"] + mean + p["brightness"] * 255.0
        return np.clip(np.rint(f), 0, 255).astype(np.uint8)

    def clip(self, image: np.ndarray, n_views: int, seed: int) -> np.ndarray:
        """All ``n_views`` views, ``n_views x H x W x 3`` uint8."""
        return np.stack([self.view(image, seed, v, n_views) for v in range(n_views)])
