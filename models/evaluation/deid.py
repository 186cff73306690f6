"""Run an exported UU-Net model directory the way the edge and the authority do, without them.

The edge crops each head ROI, resizes it to the model size (``resize_to_model``), runs ``Ue`` on
RGB + one noise plane, rounds ``a`` to uint8, resizes it back to the ROI (``resize_from_model``)
and pastes it; the authority crops the same ROI of the received frame, resizes it to the model
size, runs ``Ud`` and pastes ``r`` back. :class:`UUNetCodec` does exactly that with
``shared.geometry`` and ``shared.onnx_runner`` (via ``shared.model_dir``), so what is measured
includes the resampling between ``Ue`` and ``Ud`` (DESIGN.md, "Resampling sits between Ue and
Ud"). When ``edge_agent`` lands, its pipeline can replace :meth:`UUNetCodec.encode_frame`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.geometry import (
    Box,
    batch_to_patches,
    crops_to_batch,
    paste_batch,
    resize_from_model,
    resize_to_model,
)
from shared.model_dir import ModelCard, load_decoder, load_encoder

__all__ = ["UUNetCodec"]


class UUNetCodec:
    """``Ue`` and ``Ud`` of one model directory, with the edge's and authority's resampling.

    Args:
        model_dir: an exported model directory (``ue.onnx``, ``ud.onnx``, ``card.json``).
        threads: ONNX Runtime intra-op threads per session.
        seed: seed of the noise planes drawn when the caller gives none.

    Raises:
        shared.model_dir.ModelDirError, shared.onnx_runner.ModelLoadError /
        ModelSignatureError: the directory is incomplete or inconsistent.
    """

    name = "uunet"

    def __init__(self, model_dir: str | Path, *, threads: int = 1, seed: int = 0) -> None:
        self.model_dir = Path(model_dir)
        self.encoder, self.card = load_encoder(self.model_dir, providers="cpu", threads=threads)
        self.decoder, _ = load_decoder(self.model_dir, providers="cpu", threads=threads)
        self.size = self.card.input_size
        self._rng = np.random.default_rng(seed)

    @property
    def model_card(self) -> ModelCard:
        return self.card

    def new_noise(self, count: int = 1) -> np.ndarray:
        """``count`` fresh U(0,1) noise planes, ``count x 1 x S x S`` float32."""
        return self._rng.random((count, 1, self.size, self.size), dtype=np.float32)

    def encode_tensors(self, x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """``a = Ue([x, noise])`` on model tensors ``N x 3 x S x S`` in [0, 1].

        Raises:
            ValueError: ``x`` or ``noise`` has the wrong shape.
        """
        if x.ndim != 4 or x.shape[1:] != (3, self.size, self.size):
            raise ValueError(f"expected N x 3 x {self.size} x {self.size}, got {x.shape}")
        noise = self.new_noise(len(x)) if noise is None else noise
        if noise.shape != (len(x), 1, self.size, self.size):
            raise ValueError(f"noise of shape {noise.shape} for {len(x)} faces")
        return self.encoder(np.concatenate([x, noise], axis=1).astype(np.float32))

    def decode_tensors(self, a: np.ndarray) -> np.ndarray:
        """``r = Ud(a)`` on model tensors."""
        return self.decoder(a.astype(np.float32))

    def _patches_to_batch(self, patches: Sequence[np.ndarray]) -> np.ndarray:
        batch = np.empty((len(patches), 3, self.size, self.size), dtype=np.float32)
        for i, patch in enumerate(patches):
            batch[i] = resize_to_model(patch, self.size).transpose(2, 0, 1)
        return batch * np.float32(1.0 / 255.0)

    def encode_patches(
        self, patches: Sequence[np.ndarray], noise: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """De-identify ROI patches (uint8 RGB, any size) as the edge does: each output has its
        input's size and is what the edge would paste."""
        if not patches:
            return []
        a = batch_to_patches(self.encode_tensors(self._patches_to_batch(patches), noise))
        return [
            resize_from_model(p, q.shape[1], q.shape[0]) for p, q in zip(a, patches, strict=True)
        ]

    def decode_patches(self, patches: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Reverse pasted ``a`` patches as the authority does (crop -> model size -> Ud -> ROI)."""
        if not patches:
            return []
        r = batch_to_patches(self.decode_tensors(self._patches_to_batch(patches)))
        return [
            resize_from_model(p, q.shape[1], q.shape[0]) for p, q in zip(r, patches, strict=True)
        ]

    def __call__(self, patches: Sequence[np.ndarray]) -> list[np.ndarray]:
        """ROI anonymizer interface (:mod:`models.evaluation.baselines`): fresh noise per patch."""
        return self.encode_patches(patches)

    def encode_frame(
        self, frame: np.ndarray, boxes: Sequence[Box], noise: np.ndarray | None = None
    ) -> np.ndarray:
        """A copy of ``frame`` with every box replaced by its de-identified ROI (edge path).

        Raises:
            shared.geometry.BoxOutsideFrameError: a box is outside the frame.
        """
        out = frame.copy()
        if boxes:
            a = self.encode_tensors(crops_to_batch(frame, boxes, self.size), noise)
            paste_batch(out, a, boxes)
        return out

    def decode_frame(self, frame: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """A copy of a de-identified ``frame`` with every box reversed (authority path).

        Raises:
            shared.geometry.BoxOutsideFrameError: a box is outside the frame.
        """
        out = frame.copy()
        if boxes:
            paste_batch(out, self.decode_tensors(crops_to_batch(frame, boxes, self.size)), boxes)
        return out
