"""What a camera's edge package gives whoever holds it: ``Ue`` run exactly as the camera runs it.

A camera ships ``ue.onnx`` and ``card.json`` (the edge package, ``shared.model_dir``). Whoever
copies them, with this repository's public code, can de-identify any face photo exactly as the
camera would and so make unlimited ``(x, Ue(x))`` pairs: :class:`CameraEncoder` does that with
the camera's own code and nothing else (no ``ud.onnx`` is ever opened):

* the face is shown as a ``roi x roi`` ROI (:func:`models.evaluation.faces.show_at_size`) on a
  canvas frame;
* the edge's :class:`edge_agent.deid.Deidentifier` replaces it: crop to the model size the
  card's composition picks, one U(0,1) noise plane per face from an
  :class:`edge_agent.noise.NoiseBank` (of the attacker's own secret: the camera's secret only
  chooses *which* plane, and every plane is U(0,1)), ``Ue``, feathered paste at 8 bits;
* the public ROI is cropped back exactly as the authority crops it for ``Ud``
  (:meth:`shared.compositing.Composition.crops`), and so is the original: the decoder's input
  and its target.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_agent.deid import Deidentifier
from edge_agent.noise import NoiseBank
from models.evaluation.faces import show_at_size
from shared.compositing import Composition
from shared.geometry import Box
from shared.model_dir import CARD_FILE, ENCODER_FILE, ModelCard, ModelDirError, load_encoder

__all__ = ["CameraEncoder", "encoder_dir"]

log = logging.getLogger(__name__)


def encoder_dir(ue_path: str | Path) -> Path:
    """The model directory of ``ue_path`` (a model directory's ``ue.onnx``, or the directory).

    Raises:
        ModelDirError: the path is missing, or names a file other than ``ue.onnx`` (the card
            beside it is what says how the camera runs it).
    """
    path = Path(ue_path)
    if path.is_dir():
        path = path / ENCODER_FILE
    if path.name != ENCODER_FILE:
        raise ModelDirError(
            f"{path}: give a model directory's {ENCODER_FILE} (its {CARD_FILE} beside it), "
            f"not another file"
        )
    if not path.is_file():
        raise ModelDirError(f"{path}: encoder not found")
    return path.parent


class CameraEncoder:
    """``Ue`` of an edge package, run through the camera's own crop/noise/paste code.

    Args:
        ue_path: the package's ``ue.onnx`` (or its directory); its ``card.json`` must be beside.
        secret: the noise bank's secret (any: see the module docstring).
        threads: ONNX Runtime intra-op threads.

    Raises:
        ModelDirError: a missing/other file, a missing or malformed card, ids that disagree.
        shared.onnx_runner.ModelLoadError / ModelSignatureError: ``ue.onnx`` is not a valid
            ONNX model, or not an encoder (``x`` [N, 4, S, S] -> ``a`` [N, 3, S, S]).
    """

    def __init__(self, ue_path: str | Path, *, secret: bytes, threads: int = 1) -> None:
        self.directory = encoder_dir(ue_path)
        encoder, card = load_encoder(self.directory, providers="cpu", threads=threads)
        self.card: ModelCard = card
        self.noise = NoiseBank(secret, card.input_size)
        self.deidentifier = Deidentifier(encoder, card, self.noise)

    @property
    def composition(self) -> Composition:
        return self.card.composition

    def model_size(self, roi: int) -> int:
        """The model size a ``roi x roi`` ROI goes through (the card's composition)."""
        return self.composition.size_for(Box(0, 0, roi, roi))

    def pairs(
        self, faces: Sequence[np.ndarray], roi: int, track_ids: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(public, original)``: each face shown as a ``roi x roi`` ROI, replaced by the edge
        with the noise plane of its track id, then the public ROI and the original one cropped
        as the authority crops for ``Ud``; both ``float32 N x 3 x s x s`` in [0, 1] with
        ``s = model_size(roi)``.

        Raises:
            ValueError: no faces, or ids and faces of different lengths.
            edge_agent.deid.DeidentificationError: ``Ue`` failed or returned garbage.
        """
        if not faces or len(faces) != len(track_ids):
            raise ValueError(f"{len(faces)} faces for {len(track_ids)} track ids")
        canvas = np.ascontiguousarray(np.concatenate([show_at_size(f, roi) for f in faces], 1))
        boxes = [Box(i * roi, 0, roi, roi) for i in range(len(faces))]
        public = canvas.copy()
        try:
            self.deidentifier.apply(public, boxes, list(track_ids))
        finally:
            self.noise.forget(list(track_ids))
        size = self.model_size(roi)
        return (
            self.composition.crops(public, boxes, size),
            self.composition.crops(canvas, boxes, size),
        )
