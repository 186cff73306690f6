"""De-identification of head ROIs: crops batched through ``Ue`` (ONNX Runtime), pasted back.

Each ROI goes through the model size that fits it (:meth:`shared.compositing.Composition.size_for`)
and is pasted with the model's feathered composition; the model card says both, and the
authority derives the same from the model id in the ROI message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from edge_agent.noise import NoiseBank
from shared.compositing import group_by_size
from shared.geometry import Box
from shared.model_dir import ModelCard
from shared.onnx_runner import OnnxModel

__all__ = ["DeidentificationError", "Deidentifier"]

log = logging.getLogger(__name__)


class DeidentificationError(RuntimeError):
    """``Ue`` failed or returned something unusable for a frame's ROIs."""


class Deidentifier:
    """Replace head ROIs by ``Ue``'s surrogate faces.

    Args:
        encoder: ``Ue`` (input ``x`` [N, 4, S, S], output ``a`` [N, 3, S, S]).
        card: its model card (``model_id``, ``input_size``, ``composition``).
        noise: per-track noise planes of the card's ``input_size`` (enlarged for larger sizes).

    Raises:
        ValueError: the noise planes' size differs from the model's input size.
    """

    def __init__(self, encoder: OnnxModel, card: ModelCard, noise: NoiseBank) -> None:
        if noise.size != card.input_size:
            raise ValueError(f"noise size {noise.size} != model input size {card.input_size}")
        self.encoder = encoder
        self.card = card
        self.noise = noise
        self.size = card.input_size
        self.composition = card.composition

    @property
    def model_id(self) -> str:
        return self.card.model_id

    def apply(self, frame: np.ndarray, rois: Sequence[Box], track_ids: Sequence[int]) -> None:
        """Replace every ROI of ``frame`` (in place) by ``Ue``'s output for it.

        All ROIs are cropped before any is pasted (overlapping ROIs read the scene, not each
        other's surrogate).

        Raises:
            DeidentificationError: cropping, ``Ue`` or pasting failed, or ``Ue`` returned a
                batch of the wrong shape or with non-finite values. Some ROIs may then already
                be replaced and others not: the caller must black them all out.
        """
        if len(rois) != len(track_ids):
            raise DeidentificationError(f"{len(rois)} ROIs for {len(track_ids)} track ids")
        if not rois:
            return
        groups = group_by_size(self.composition, rois)
        outputs: list[tuple[np.ndarray, list[Box]]] = []
        try:
            batches = {
                size: np.concatenate(
                    [
                        self.composition.crops(frame, [rois[i] for i in members], size),
                        np.stack([self.noise.plane(track_ids[i], size) for i in members])[:, None],
                    ],
                    axis=1,
                )
                for size, members in groups.items()
            }
            for size, members in groups.items():
                outputs.append((self._encode(batches[size], size), [rois[i] for i in members]))
        except DeidentificationError:
            raise
        except Exception as exc:  # ONNX Runtime and geometry errors alike: fail closed
            raise DeidentificationError(f"Ue failed on {len(rois)} ROIs: {exc}") from exc
        try:
            for out, boxes in outputs:
                self.composition.paste(frame, out, boxes)
        except ValueError as exc:
            raise DeidentificationError(f"pasting Ue output failed: {exc}") from exc

    def _encode(self, batch: np.ndarray, size: int) -> np.ndarray:
        out = self.encoder(batch)
        expected = (len(batch), 3, size, size)
        if not isinstance(out, np.ndarray) or out.shape != expected:
            shape = getattr(out, "shape", type(out).__name__)
            raise DeidentificationError(f"Ue returned {shape}, expected {expected}")
        if not np.isfinite(out).all():
            raise DeidentificationError("Ue returned non-finite values")
        return out
