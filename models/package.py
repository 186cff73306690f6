"""Package an export for deployment: the edge's side and the authority's side, apart.

An export (``uunet-train export``) holds ``ue.onnx``, ``ud.onnx`` and ``card.json``: whoever has
both files can make surrogates *and* undo them. What is deployed is split:

* the **edge package** (``--edge-out``): ``ue.onnx`` and ``card.json``; this goes on cameras;
* the **authority package** (``<decoders-out>/<model id>/``): ``ud.onnx`` and ``card.json``;
  this stays with the authority (``models.models_dir`` of its settings).

Both cards get ``decoder_published`` (false unless ``--published``: the decoder is then known to
be public, as the repository's shipped default is, and the edge refuses the model unless
``privacy.allow_public_decoder`` is set).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from shared.model_dir import (
    CARD_FILE,
    DECODER_FILE,
    DECODER_PUBLISHED,
    ENCODER_FILE,
    load_decoder,
    load_encoder,
)

__all__ = ["PackageError", "Packages", "package_model"]

log = logging.getLogger(__name__)


class PackageError(ValueError):
    """The export cannot be packaged (missing files, or an edge folder holding a decoder)."""


@dataclass(frozen=True)
class Packages:
    """Where the two packages were written."""

    model_id: str
    edge_dir: Path
    decoder_dir: Path


def _write_card(card: dict, directory: Path) -> None:
    (directory / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def package_model(
    export_dir: Path, edge_out: Path, decoders_out: Path, *, published: bool = False
) -> Packages:
    """Split ``export_dir`` into the edge package and the authority package.

    Both files are loaded and checked against the card first (ids, roles, signatures).

    Raises:
        shared.model_dir.ModelDirError / shared.onnx_runner errors: the export is broken.
        PackageError: ``edge_out`` is ``export_dir`` or already holds ``ud.onnx``.
    """
    export_dir, edge_out = Path(export_dir), Path(edge_out)
    _, card = load_encoder(export_dir, providers="cpu")
    load_decoder(export_dir, providers="cpu")
    if edge_out.resolve() == export_dir.resolve():
        raise PackageError(f"{edge_out}: the edge package must be a folder of its own")
    if (edge_out / DECODER_FILE).exists():
        raise PackageError(
            f"{edge_out / DECODER_FILE} exists: an edge package must not hold the decoder "
            "(remove it, or choose another --edge-out)"
        )
    raw = {**card.raw, DECODER_PUBLISHED: published}
    decoder_dir = Path(decoders_out) / card.model_id
    for directory, model_file in ((edge_out, ENCODER_FILE), (decoder_dir, DECODER_FILE)):
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(export_dir / model_file, directory / model_file)
        _write_card(raw, directory)
    log.info(
        "model %s: edge package %s (ue.onnx), authority package %s (ud.onnx); decoder %s",
        card.model_id,
        edge_out,
        decoder_dir,
        "published" if published else "private",
    )
    return Packages(card.model_id, edge_out, decoder_dir)
