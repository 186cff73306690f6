"""Resumable checkpoints: atomic writes, and a clear refusal of another architecture's state."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CheckpointError", "load_checkpoint", "load_module_state", "save_checkpoint"]

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint is unreadable, or was written for another architecture/configuration."""


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a kill mid-write leaves the old file intact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(state), tmp)
    os.replace(tmp, path)
    log.debug("saved checkpoint %s", path)


def load_checkpoint(path: Path, architecture: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a checkpoint; with ``architecture``, refuse one saved for a different one.

    Raises:
        CheckpointError: missing/corrupt file, or its ``architecture`` entry differs (the
            differing keys are named).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint not found: {path}") from exc
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a uunet checkpoint")
    if architecture is not None:
        saved = state.get("architecture")
        if saved is None:
            raise CheckpointError(f"{path}: no architecture record; not a uunet checkpoint")
        differing = sorted(
            k for k in set(saved) | set(architecture) if saved.get(k) != architecture.get(k)
        )
        if differing:
            detail = ", ".join(
                f"{k}: checkpoint {saved.get(k)!r} vs requested {architecture.get(k)!r}"
                for k in differing
            )
            raise CheckpointError(f"{path}: checkpoint is from another architecture ({detail})")
    return state


def load_module_state(module: nn.Module, state: Mapping[str, Any], name: str, source: Path) -> None:
    """``module.load_state_dict(state)`` with an error that names the checkpoint and part.

    Raises:
        CheckpointError: missing/unexpected keys or shape mismatches.
    """
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{source}: {name} does not fit this architecture: {first}") from exc
