"""De-identification of head ROIs: crops batched through ``Ue`` (ONNX Runtime), pasted back."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from edge_agent.noise import NoiseBank
from shared.geometry import Box, crops_to_batch, paste_batch
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
        card: its model card (``model_id``, ``input_size``).
        noise: per-track noise planes of size ``S``.

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

    @property
    def model_id(self) -> str:
        return self.card.model_id

    def apply(self, frame: np.ndarray, rois: Sequence[Box], track_ids: Sequence[int]) -> None:
        """Replace every ROI of ``frame`` (in place) by ``Ue``'s output for it.

        Raises:
            DeidentificationError: cropping, ``Ue`` or pasting failed, or ``Ue`` returned a
                batch of the wrong shape or with non-finite values. Some ROIs may then already
                be replaced and others not: the caller must black them all out.
        """
        if len(rois) != len(track_ids):
            raise DeidentificationError(f"{len(rois)} ROIs for {len(track_ids)} track ids")
        if not rois:
            return
        try:
            crops = crops_to_batch(frame, rois, self.size)
            noise = np.stack([self.noise.plane(t) for t in track_ids])[:, None]
            batch = np.concatenate([crops, noise], axis=1)
            out = self.encoder(batch)
        except Exception as exc:  # ONNX Runtime and geometry errors alike: fail closed
            raise DeidentificationError(f"Ue failed on {len(rois)} ROIs: {exc}") from exc
        expected = (len(rois), 3, self.size, self.size)
        if not isinstance(out, np.ndarray) or out.shape != expected:
            shape = getattr(out, "shape", type(out).__name__)
            raise DeidentificationError(f"Ue returned {shape}, expected {expected}")
        if not np.isfinite(out).all():
            raise DeidentificationError("Ue returned non-finite values")
        try:
            paste_batch(frame, out, rois)
        except ValueError as exc:
            raise DeidentificationError(f"pasting Ue output failed: {exc}") from exc
