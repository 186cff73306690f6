"""The decoders (Ud) this authority holds, found by model id.

Layout: ``models_dir/<model id>/`` holds a model directory (``ud.onnx`` + ``card.json``; a full
``ue.onnx``/``ud.onnx``/``card.json`` export works too: only ``ud.onnx`` is loaded). The folders
are indexed by the ``model_id`` of their card; ONNX sessions are created once, on first use or
all at start-up (:meth:`DecoderRegistry.load_all`, which the service calls). A default model
directory (configured, or the shipped one named by ``models/weights/decoders/DEFAULT``) serves
paper-format messages, which name no model, and is indexed by its id as well. Archive folders
(the shipped ``models/weights/decoders``: the decoders of this and earlier default models, so
their recordings stay reversible) are indexed like ``models_dir``, below it: a model id already
found is kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from authority_service.errors import ModelUnavailableError, UnknownModelError
from shared.model_dir import (
    DECODER_PUBLISHED,
    ModelCard,
    ModelDirError,
    load_card,
    load_decoder,
)
from shared.onnx_runner import OnnxModel

__all__ = ["Decoder", "DecoderRegistry"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decoder:
    """A loaded Ud with its card."""

    model: OnnxModel
    card: ModelCard
    directory: Path

    @property
    def model_id(self) -> str:
        return self.card.model_id

    @property
    def input_size(self) -> int:
        return self.card.input_size


class DecoderRegistry:
    """Map model ids to model directories; load each Ud once, on first use.

    Args:
        models_dir: folder with one model directory per model id (``None``: none).
        default_dir: decoder for messages that name no model (``None``: no default).
        archive_dirs: more folders of model directories, indexed after ``models_dir`` and
            the default (ids found there first win); a missing archive folder is skipped.
        providers / threads / max_batch: passed to :func:`shared.model_dir.load_decoder`.

    Raises:
        ModelDirError: ``models_dir`` is not a directory, a sub-folder's card is invalid, two
            folders claim one model id, or ``default_dir`` is not a valid model directory.
    """

    def __init__(
        self,
        models_dir: Path | None,
        default_dir: Path | None,
        *,
        providers: str | Sequence[str] = "auto",
        threads: int | None = None,
        max_batch: int | None = None,
        archive_dirs: Sequence[Path] = (),
    ) -> None:
        self._options = {"providers": providers, "threads": threads, "max_batch": max_batch}
        self._dirs: dict[str, Path] = {}
        self._loaded: dict[str, Decoder] = {}
        self._lock = threading.Lock()
        self.default_id: str | None = None
        if models_dir is not None:
            if not models_dir.is_dir():
                raise ModelDirError(f"models directory not found: {models_dir}")
            for sub in sorted(p for p in models_dir.iterdir() if p.is_dir()):
                self._index(load_card(sub), sub)
        if default_dir is not None:
            card = load_card(default_dir)
            if self._dirs.get(card.model_id, default_dir).resolve() != default_dir.resolve():
                log.info(
                    "default model %s is also in %s; using the models directory's copy",
                    card.model_id,
                    self._dirs[card.model_id],
                )
            self._dirs.setdefault(card.model_id, default_dir)
            self.default_id = card.model_id
        for archive in archive_dirs:
            if not archive.is_dir():
                continue
            for sub in sorted(p for p in archive.iterdir() if p.is_dir()):
                card = load_card(sub)
                if card.model_id not in self._dirs:
                    self._index(card, sub)
        log.info(
            "decoders available: %s (default %s)", sorted(self._dirs) or "none", self.default_id
        )

    def _index(self, card: ModelCard, directory: Path) -> None:
        if directory.name != card.model_id:
            log.warning(
                "model folder %s holds model %s; name folders after their model id",
                directory,
                card.model_id,
            )
        if card.model_id in self._dirs:
            raise ModelDirError(
                f"model id {card.model_id} is in both {self._dirs[card.model_id]} and {directory}"
            )
        self._dirs[card.model_id] = directory

    def __getstate__(self) -> dict[str, object]:
        """Pickled without its ONNX sessions (a segment worker process loads its own, on first
        use; :mod:`authority_service.parallel`)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_loaded", "_lock")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._loaded = {}
        self._lock = threading.Lock()

    @property
    def model_ids(self) -> list[str]:
        """Ids of every decoder this registry can load."""
        return sorted(self._dirs)

    def get(self, model_id: str) -> Decoder:
        """The decoder of ``model_id`` (loaded on first use).

        Raises:
            UnknownModelError: no decoder for this id.
            ModelDirError / shared.onnx_runner errors: its files are broken.
        """
        with self._lock:
            decoder = self._loaded.get(model_id)
            if decoder is not None:
                return decoder
            directory = self._dirs.get(model_id)
            if directory is None:
                raise UnknownModelError(
                    f"no decoder for model {model_id!r}; this authority holds "
                    f"{self.model_ids or 'no model'}",
                    model_id=model_id,
                )
            model, card = load_decoder(directory, **self._options)  # type: ignore[arg-type]
            if card.model_id != model_id:  # the card changed on disk since start-up
                raise ModelDirError(f"{directory}: card now says model {card.model_id}")
            if card.raw.get(DECODER_PUBLISHED) is True:
                log.warning(
                    "decoder %s is published (its card says %s: true): anyone can reverse the "
                    "clips of this model without this authority",
                    model_id,
                    DECODER_PUBLISHED,
                )
            decoder = Decoder(model, card, directory)
            self._loaded[model_id] = decoder
            return decoder

    def load_all(self) -> None:
        """Load (and warm up) every decoder now, so a broken model fails at start-up.

        Raises:
            ModelDirError / shared.onnx_runner errors: a model directory is broken.
        """
        for model_id in self.model_ids:
            self.get(model_id)

    def default(self) -> Decoder:
        """The decoder for messages that name no model.

        Raises:
            ModelUnavailableError: no default model is configured or shipped.
        """
        if self.default_id is None:
            raise ModelUnavailableError(
                "the message names no model (paper format) and this authority has no default "
                "model: set models.default_model_dir"
            )
        return self.get(self.default_id)

    def for_model(self, model_id: str | None) -> Decoder:
        """``get(model_id)``, or :meth:`default` when the message names no model."""
        return self.default() if model_id is None else self.get(model_id)
