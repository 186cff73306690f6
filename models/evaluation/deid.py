"""Run an exported UU-Net model directory through the edge's and the authority's own code.

:class:`UUNetCodec` holds a model's ``Ue`` as the edge runs it (:class:`edge_agent.deid.
Deidentifier`: crop per model size, one noise plane per face from a
:class:`edge_agent.noise.NoiseBank`, feathered paste of the card's
:class:`shared.compositing.Composition`) and its ``Ud`` as the authority runs it
(:func:`authority_service.reconstruction.reverse_faces`: crop, ``Ud``, feathered paste). Nothing
here re-implements either side: what is measured is what the edge pastes and what the
authority gives back, resampling and feathering included (DESIGN.md, "Resampling sits between Ue
and Ud").

Photo crops (the card's figures, the identity sets) go through :meth:`UUNetCodec.encode_patches`:
each crop is a whole ROI, so the feathered band blends ``a`` into the crop's own border pixels,
exactly as the edge blends it into the scene. Frames with known boxes go through
:meth:`UUNetCodec.encode_frame`; frames with detection and tracking go through the edge's
:class:`~edge_agent.pipeline.FrameProcessor` (:mod:`models.evaluation.edge_path`).

``composition`` overrides the card's composition (the feather sweep); the override reaches the
edge's and the authority's code as a card would.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from authority_service.config import SHIPPED_DECODERS_DIR
from authority_service.decoders import Decoder
from authority_service.reconstruction import reverse_faces
from edge_agent.deid import Deidentifier
from edge_agent.noise import NoiseBank
from shared.compositing import Composition, CompositionError
from shared.geometry import Box
from shared.model_dir import ModelCard, find_decoder_dir, load_decoder, load_encoder
from shared.onnx_runner import OnnxModel

__all__ = ["FRESH_IDS_START", "UUNetCodec", "noise_secret"]

#: Noise ids handed out by :meth:`UUNetCodec.fresh_ids` start here, far from the small ids
#: callers pass explicitly (face ``i`` -> plane ``i``).
FRESH_IDS_START = 1 << 32
#: Faces per canvas when crops are run as one frame (bounds the canvas' memory).
_CANVAS_FACES = 64


def noise_secret(seed: int) -> bytes:
    """The evaluation's noise secret for ``seed`` (the edge draws a random one per process)."""
    return b"uunet-evaluation-noise-%d" % seed


def _check_fits(composition: Composition, input_size: int) -> None:
    if composition.sizes[0] != input_size:
        raise CompositionError(
            f"composition sizes {list(composition.sizes)} must start with the model's input "
            f"size {input_size}"
        )


class UUNetCodec:
    """``Ue`` as the edge runs it and ``Ud`` as the authority runs it, for one model directory.

    Args:
        model_dir: an exported model directory (``ue.onnx``, ``ud.onnx``, ``card.json``), or an
            edge package whose decoder is among the shipped ones (``models/weights/decoders``).
        threads: ONNX Runtime intra-op threads per session.
        seed: seeds the secret of the noise planes (plane ``i`` is the same for a seed).
        composition: replaces the card's composition (e.g. another ``feather``).

    Raises:
        shared.model_dir.ModelDirError, shared.onnx_runner.ModelLoadError /
        ModelSignatureError: the directory is incomplete or inconsistent.
        shared.compositing.CompositionError: ``composition``'s sizes do not start with the
            model's input size.
    """

    name = "uunet"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        threads: int = 1,
        seed: int = 0,
        composition: Composition | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        encoder, card = load_encoder(self.model_dir, providers="cpu", threads=threads)
        decoder, _ = load_decoder(
            find_decoder_dir(self.model_dir, [SHIPPED_DECODERS_DIR]),
            providers="cpu",
            threads=threads,
        )
        if composition is not None:
            _check_fits(composition, card.input_size)
            card = dataclasses.replace(card, composition=composition)
        self.card: ModelCard = card
        self.size = card.input_size
        self.seed = seed
        self.threads = threads
        self.noise = NoiseBank(noise_secret(seed), card.input_size)
        self.deidentifier = Deidentifier(encoder, card, self.noise)
        self.decoder = Decoder(decoder, card, self.model_dir)
        self._fresh = itertools.count(FRESH_IDS_START)

    def with_composition(self, composition: Composition) -> UUNetCodec:
        """The same model (ONNX sessions and noise planes shared) with another composition.

        Raises:
            shared.compositing.CompositionError: ``composition`` does not fit the card (its
                first size must be the model's input size).
        """
        _check_fits(composition, self.size)
        other = copy.copy(self)
        other.card = dataclasses.replace(self.card, composition=composition)
        other.deidentifier = Deidentifier(self.deidentifier.encoder, other.card, self.noise)
        other.decoder = Decoder(self.decoder.model, other.card, self.model_dir)
        return other

    def with_decoder(self, model: OnnxModel) -> UUNetCodec:
        """The same ``Ue`` and noise planes with another decoder in the authority's place
        (``model``: ``a`` [N, 3, S, S] -> ``r``), run through the same crop -> decode -> paste
        path; e.g. a decoder an attacker trained from ``Ue`` alone (:mod:`models.attack`)."""
        other = copy.copy(self)
        other.decoder = Decoder(model, self.card, self.model_dir)
        return other

    @property
    def model_card(self) -> ModelCard:
        return self.card

    @property
    def composition(self) -> Composition:
        return self.card.composition

    # -- noise planes ------------------------------------------------------------------------
    def fresh_ids(self, count: int) -> list[int]:
        """``count`` noise ids no earlier call returned (one new plane each)."""
        return [next(self._fresh) for _ in range(count)]

    def noise_planes(self, ids: Sequence[int]) -> np.ndarray:
        """The noise planes of ``ids`` at the model's input size, ``N x 1 x S x S`` float32."""
        if not ids:
            return np.empty((0, 1, self.size, self.size), dtype=np.float32)
        return np.stack([self.noise.plane(i) for i in ids])[:, None]

    # -- model tensors (no resampling, no rounding) ------------------------------------------
    def encode_tensors(self, x: np.ndarray, ids: Sequence[int] | None = None) -> np.ndarray:
        """``a = Ue([x, noise])`` on model tensors ``N x 3 x S x S`` in [0, 1], with the noise
        planes of ``ids`` (fresh ones when ``None``).

        Raises:
            ValueError: ``x`` has the wrong shape or ``ids`` the wrong length.
        """
        if x.ndim != 4 or x.shape[1:] != (3, self.size, self.size):
            raise ValueError(f"expected N x 3 x {self.size} x {self.size}, got {x.shape}")
        ids = self.fresh_ids(len(x)) if ids is None else list(ids)
        if len(ids) != len(x):
            raise ValueError(f"{len(ids)} noise ids for {len(x)} faces")
        batch = np.concatenate([x.astype(np.float32), self.noise_planes(ids)], axis=1)
        return self.deidentifier.encoder(batch)

    def decode_tensors(self, a: np.ndarray) -> np.ndarray:
        """``r = Ud(a)`` on model tensors."""
        return self.decoder.model(a.astype(np.float32))

    # -- frames with known boxes -------------------------------------------------------------
    def encode_frame(
        self, frame: np.ndarray, boxes: Sequence[Box], ids: Sequence[int] | None = None
    ) -> np.ndarray:
        """A copy of ``frame`` with every box replaced as the edge replaces it
        (:meth:`edge_agent.deid.Deidentifier.apply`; ``ids`` choose the noise planes, fresh
        ones when ``None``).

        Raises:
            edge_agent.deid.DeidentificationError: a box is outside the frame or ``Ue`` failed.
        """
        out = frame.copy()
        ids = self.fresh_ids(len(boxes)) if ids is None else list(ids)
        self.deidentifier.apply(out, list(boxes), ids)
        return out

    def decode_frame(self, frame: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """A copy of a public ``frame`` with every box reversed as the authority reverses it
        (:func:`authority_service.reconstruction.reverse_faces`).

        Raises:
            shared.geometry.BoxOutsideFrameError: a box is outside the frame.
            shared.onnx_runner.ModelRunError: ``Ud`` failed.
        """
        out = frame.copy()
        if boxes:
            reverse_faces(self.decoder, [out], [list(boxes)])
        return out

    # -- photo crops, each a whole ROI -------------------------------------------------------
    def encode_patches(
        self, patches: Sequence[np.ndarray], ids: Sequence[int] | None = None
    ) -> list[np.ndarray]:
        """De-identify ROI patches (uint8 RGB, any sizes) as the edge does: each output is what
        the edge would leave in that ROI. ``ids`` choose the noise planes (fresh when ``None``).

        Raises:
            ValueError: ``ids`` of the wrong length.
        """
        ids = self.fresh_ids(len(patches)) if ids is None else list(ids)
        if len(ids) != len(patches):
            raise ValueError(f"{len(ids)} noise ids for {len(patches)} patches")
        return self._through_canvas(
            patches, lambda canvas, boxes, k: self.encode_frame(canvas, boxes, ids[k])
        )

    def decode_patches(self, patches: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Reverse public ROI patches as the authority does (crop -> ``Ud`` -> paste)."""
        return self._through_canvas(
            patches, lambda canvas, boxes, _: self.decode_frame(canvas, boxes)
        )

    def __call__(self, patches: Sequence[np.ndarray]) -> list[np.ndarray]:
        """ROI anonymizer interface (:mod:`models.evaluation.baselines`): fresh noise per patch."""
        return self.encode_patches(patches)

    @staticmethod
    def _through_canvas(
        patches: Sequence[np.ndarray],
        run: Callable[[np.ndarray, list[Box], slice], np.ndarray],
    ) -> list[np.ndarray]:
        """Lay the patches side by side on one canvas frame (so ``Ue``/``Ud`` run batched),
        run ``run(canvas, boxes, index slice)`` on it and cut the results out again."""
        out: list[np.ndarray] = []
        for start in range(0, len(patches), _CANVAS_FACES):
            chunk = patches[start : start + _CANVAS_FACES]
            height = max(p.shape[0] for p in chunk)
            canvas = np.zeros((height, sum(p.shape[1] for p in chunk), 3), dtype=np.uint8)
            boxes, x = [], 0
            for patch in chunk:
                h, w = patch.shape[:2]
                canvas[:h, x : x + w] = patch
                boxes.append(Box(x, 0, w, h))
                x += w
            result = run(canvas, boxes, slice(start, start + len(chunk)))
            out += [result[b.y : b.bottom, b.x : b.right].copy() for b in boxes]
        return out
