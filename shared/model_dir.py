"""An exported UU-Net model directory, as ``uunet-train export`` writes it and both sides load it.

Layout of an export (the training output, private to whoever trained the pair)::

    <dir>/ue.onnx     encoder: input  ``x`` [N, 4, S, S] float32 in [0, 1]
                               (RGB + one channel of U(0,1) noise)
                               output ``a`` [N, 3, S, S] float32 in [0, 1]
    <dir>/ud.onnx     decoder: input  ``a`` [N, 3, S, S] -> output ``r`` [N, 3, S, S]
    <dir>/card.json   the model card: {"model_id", "input_size", "s", "labels", ...}

What is deployed is packaged apart (``uunet-train package``): the **edge package** holds
``ue.onnx`` and ``card.json`` only (``models/weights/default/`` is one), the **authority package**
``ud.onnx`` and ``card.json`` in a folder named by the model id (``models/weights/decoders/<id>/``).
The card's ``decoder_published`` says whether the decoder is public; the edge refuses a model
whose decoder is public, or whose directory holds ``ud.onnx``, unless told it runs a demo.

Both ONNX files carry the same metadata entries ``model_id`` (16 hex chars, a hash of the weights
of the Ue/Ud pair), ``input_size``, ``s`` and ``labels`` (JSON), and ``role`` (``ue``/``ud``). The
edge writes ``model_id`` into every ROI message; the authority picks the decoder whose
``model_id`` matches. A directory whose files disagree with each other is refused.

The card's ``composition`` (:class:`shared.compositing.Composition`: resampling, paste band,
model sizes) says how the model's output enters the frame; a card without one is a round-1
model (pixel replication, hard paste, ``input_size`` only). A model offered at several sizes
has dynamic height and width in both files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.compositing import Composition, CompositionError
from shared.onnx_runner import OnnxModel, TensorSpec
from shared.ort_providers import GpuOptions

__all__ = [
    "CARD_FILE",
    "DECODER_FILE",
    "DECODER_PUBLISHED",
    "ENCODER_FILE",
    "ModelCard",
    "ModelDirError",
    "find_decoder_dir",
    "load_card",
    "load_decoder",
    "load_encoder",
]

#: The card's entry saying whether ``ud.onnx`` is public (``true``: anyone can reverse the
#: model's clips; the edge refuses such a model unless told it is a demo).
DECODER_PUBLISHED = "decoder_published"
ENCODER_FILE = "ue.onnx"
DECODER_FILE = "ud.onnx"
CARD_FILE = "card.json"


class ModelDirError(ValueError):
    """A model directory is missing files, or its files disagree (model id, size, role)."""


@dataclass(frozen=True)
class ModelCard:
    """What ``card.json`` says of a model; ``raw`` keeps the whole document."""

    model_id: str
    input_size: int
    s: tuple[int, ...]
    labels: tuple[str, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    composition: Composition = field(default_factory=Composition, compare=False)


def load_card(directory: str | Path) -> ModelCard:
    """Read and check ``card.json`` of a model directory.

    Raises:
        ModelDirError: missing directory or card, invalid JSON, or missing/invalid fields.
    """
    directory = Path(directory)
    path = directory / CARD_FILE
    if not directory.is_dir():
        raise ModelDirError(f"model directory not found: {directory}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelDirError(f"{path}: model card missing") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path}: cannot read model card: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelDirError(f"{path}: expected a JSON object")
    try:
        model_id = raw["model_id"]
        input_size = raw["input_size"]
        s = tuple(raw["s"])
        labels = tuple(raw["labels"])
    except (KeyError, TypeError) as exc:
        raise ModelDirError(f"{path}: missing or invalid field {exc}") from exc
    if not isinstance(model_id, str) or not model_id:
        raise ModelDirError(f"{path}: model_id must be a non-empty string")
    if not isinstance(input_size, int) or input_size < 8:
        raise ModelDirError(f"{path}: input_size must be an integer >= 8, got {input_size!r}")
    if len(s) != len(labels) or any(v not in (-1, 0, 1) for v in s):
        raise ModelDirError(f"{path}: s must hold one value in -1/0/1 per label, got {list(s)}")
    try:
        composition = Composition.from_card(raw)
    except CompositionError as exc:
        raise ModelDirError(f"{path}: {exc}") from exc
    return ModelCard(model_id, input_size, s, labels, raw, composition)


#: Per role: the file, then (name, channels) of its input and of its output, [N, C, S, S].
_ROLES: dict[str, tuple[str, tuple[str, int], tuple[str, int]]] = {
    "ue": (ENCODER_FILE, ("x", 4), ("a", 3)),
    "ud": (DECODER_FILE, ("a", 3), ("r", 3)),
}


def _load(
    directory: str | Path,
    role: str,
    providers: str | Sequence[str],
    threads: int | None,
    max_batch: int | None,
    gpu: GpuOptions | None = None,
) -> tuple[OnnxModel, ModelCard]:
    directory = Path(directory)
    card = load_card(directory)
    filename, (in_name, in_channels), (out_name, out_channels) = _ROLES[role]
    sizes = card.composition.sizes
    side: int | None = sizes[0] if len(sizes) == 1 else None  # several sizes: dynamic H, W
    path = directory / filename
    if not path.is_file():
        raise ModelDirError(f"{path}: {role} model missing")
    model = OnnxModel(
        path,
        inputs=[TensorSpec(in_name, (None, in_channels, side, side))],
        outputs=[TensorSpec(out_name, (None, out_channels, side, side))],
        warmup_shape=(1, in_channels, sizes[0], sizes[0]),
        providers=providers,
        threads=threads,
        max_batch=max_batch,
        gpu=gpu,
        profile_sides=sizes,
    )
    meta_id = model.metadata.get("model_id")
    if meta_id != card.model_id:
        raise ModelDirError(
            f"{path}: metadata model_id {meta_id!r} differs from the card's {card.model_id!r}"
        )
    if model.metadata.get("role", role) != role:
        raise ModelDirError(f"{path}: metadata role {model.metadata['role']!r}, expected {role!r}")
    return model, card


def load_encoder(
    directory: str | Path,
    *,
    providers: str | Sequence[str] = "auto",
    threads: int | None = None,
    max_batch: int | None = None,
    gpu: GpuOptions | None = None,
) -> tuple[OnnxModel, ModelCard]:
    """Load ``ue.onnx`` of a model directory, checked against its card.

    ``gpu``: CUDA/TensorRT options; the TensorRT profile spans the card's model sizes.

    Raises:
        ModelDirError: missing files or disagreeing model ids.
        shared.onnx_runner.ModelLoadError / ModelSignatureError / ProviderError: see there.
        ValueError: ``gpu`` options that do not fit ``max_batch``.
    """
    return _load(directory, "ue", providers, threads, max_batch, gpu)


def load_decoder(
    directory: str | Path,
    *,
    providers: str | Sequence[str] = "auto",
    threads: int | None = None,
    max_batch: int | None = None,
) -> tuple[OnnxModel, ModelCard]:
    """Load ``ud.onnx`` of a model directory, checked against its card.

    Raises:
        ModelDirError: missing files or disagreeing model ids.
        shared.onnx_runner.ModelLoadError / ModelSignatureError / ProviderError: see there.
    """
    return _load(directory, "ud", providers, threads, max_batch)


def find_decoder_dir(directory: str | Path, decoder_roots: Sequence[str | Path] = ()) -> Path:
    """The directory holding the decoder of the model in ``directory``.

    ``directory`` itself when it holds ``ud.onnx`` (an export), else the first
    ``<root>/<model id>/`` of ``decoder_roots`` that does (an edge package whose decoder lives
    with the authority's packages).

    Raises:
        ModelDirError: the card cannot be read, or no decoder of its model id is found.
    """
    directory = Path(directory)
    if (directory / DECODER_FILE).is_file():
        return directory
    model_id = load_card(directory).model_id
    for root in decoder_roots:
        candidate = Path(root) / model_id
        if (candidate / DECODER_FILE).is_file():
            return candidate
    searched = ", ".join(str(Path(r) / model_id) for r in decoder_roots) or "no decoder folders"
    raise ModelDirError(
        f"{directory}: no {DECODER_FILE} of model {model_id} (looked in {directory}, {searched})"
    )
