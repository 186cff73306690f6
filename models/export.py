"""Export a trained Ue/Ud pair to ONNX (``ue.onnx``, ``ud.onnx``, ``card.json``), checked.

The directory follows ``shared.model_dir``: fixed tensor names (``x`` -> ``a``, ``a`` -> ``r``),
a dynamic batch axis (and dynamic height and width when the model runs at several sizes), one
file per network (no external data), and metadata in both files: ``model_id`` (first 16 hex
chars of SHA-256 over the weights of Ue then Ud), ``role``, ``input_size``, ``s``, ``labels``,
``composition`` and ``training`` (JSON summary). The card states the composition
(``shared.compositing``: resampling, paste band, sizes) that the edge and the authority apply.
The export is refused unless ONNX Runtime, loading the files exactly as the edge and the
authority do, reproduces torch's outputs on random inputs at every size to within
``tolerance`` (max abs difference).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from google.protobuf.message import DecodeError
from torch import nn

from models.checkpoint import load_checkpoint, load_module_state
from models.config import DeidConfig, load_config
from models.runloop import RunDir
from models.uunet_parts import architecture_of, build_generators
from shared.model_dir import CARD_FILE, DECODER_FILE, ENCODER_FILE, load_decoder, load_encoder

__all__ = [
    "ExportParityError",
    "export_network",
    "export_run",
    "load_generators",
    "max_abs_diff",
    "weights_id",
]

log = logging.getLogger(__name__)

OPSET = 17


class ExportParityError(RuntimeError):
    """ONNX Runtime's outputs differ from torch's beyond the tolerance."""


def weights_id(*modules: nn.Module) -> str:
    """16 hex chars of SHA-256 over the modules' state tensors (names and bytes, in order)."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            digest.update(name.encode("utf-8"))
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_generators(run_dir: Path) -> tuple[nn.Module, nn.Module, DeidConfig, dict[str, Any]]:
    """Ue and Ud (eval mode), the run's config and its checkpoint, from a Learning II run.

    Raises:
        models.checkpoint.CheckpointError: missing/incompatible checkpoint.
        shared.config_base.ConfigError: invalid ``config.yml``.
    """
    run = RunDir(run_dir)
    config = load_config(DeidConfig, run.config)
    assert isinstance(config, DeidConfig)
    state = load_checkpoint(run.checkpoint, architecture_of(config))
    ue, ud = build_generators(config)
    load_module_state(ue, state["ue"], "ue", run.checkpoint)
    load_module_state(ud, state["ud"], "ud", run.checkpoint)
    return ue.eval(), ud.eval(), config, state


def _matcher_summary(matcher_run: Path | None) -> dict[str, Any]:
    """Da's run, steps and held-out AUCs (its ``metrics.json``), for the model card."""
    if matcher_run is None:
        return {"run": None, "note": "no Da: none of its terms (Lano, Lcon, Ldiv) trained it"}
    path = Path(matcher_run) / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        metrics = {}
    return {"run": Path(matcher_run).name, "held_out": metrics}


def export_network(
    module: nn.Module,
    in_name: str,
    out_name: str,
    channels: int,
    size: int,
    path: Path,
    metadata: dict[str, str],
    dynamic_size: bool = False,
) -> None:
    """Export ``module`` (``N x channels x size x size`` in) to one ONNX file at ``path``
    (tensors named ``in_name``/``out_name``, dynamic batch, and dynamic height and width with
    ``dynamic_size``) whose metadata is exactly ``metadata``.

    Raises:
        onnx.checker.ValidationError: the exported graph is invalid.
    """
    example = torch.rand(1, channels, size, size)
    axes: dict[int, str] = {0: "N", 2: "H", 3: "W"} if dynamic_size else {0: "N"}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but exact and fast for this plain CNN.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[in_name],
            output_names=[out_name],
            dynamic_axes={in_name: axes, out_name: axes},
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def max_abs_diff(
    session: Callable[[np.ndarray], np.ndarray], module: nn.Module, batch: np.ndarray
) -> float:
    """Largest ``|session(batch) - module(batch)|``: an ONNX Runtime model against its torch
    source on one batch."""
    with torch.no_grad():
        want = module(torch.from_numpy(batch)).numpy()
    return float(np.abs(session(batch) - want).max())


def _parity(
    directory: Path, ue: nn.Module, ud: nn.Module, sizes: tuple[int, ...], seed: int
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    encoder, _ = load_encoder(directory, providers="cpu")
    decoder, _ = load_decoder(directory, providers="cpu")
    worst = {"ue_max_abs_diff": 0.0, "ud_max_abs_diff": 0.0}
    for size in sizes:
        x = rng.random((5, 4, size, size), dtype=np.float32)
        a = rng.random((5, 3, size, size), dtype=np.float32)
        worst["ue_max_abs_diff"] = max(worst["ue_max_abs_diff"], max_abs_diff(encoder, ue, x))
        worst["ud_max_abs_diff"] = max(worst["ud_max_abs_diff"], max_abs_diff(decoder, ud, a))
    return worst


def _export_origin(path: Path) -> dict[str, Any]:
    """Where an imported network came from: its file, the ``model_id`` in its metadata and,
    when a ``card.json`` lies beside it, that card's training summary (run, steps, Da)."""
    origin: dict[str, Any] = {"file": str(path)}
    try:
        graph = onnx.load(str(path), load_external_data=False)
        origin["model_id"] = {p.key: p.value for p in graph.metadata_props}.get("model_id")
    except (OSError, DecodeError) as exc:
        origin["model_id"] = None
        origin["note"] = f"cannot read the file any more: {exc}"
    card_path = Path(path).parent / CARD_FILE
    try:
        training = json.loads(card_path.read_text(encoding="utf-8")).get("training", {})
    except (OSError, json.JSONDecodeError):
        return origin
    origin["training"] = {k: training.get(k) for k in ("run", "steps", "matcher")}
    return origin


def _init_from_summary(config: DeidConfig) -> dict[str, Any] | None:
    """The exports a run started from (``init_from``), for the model card; None: random."""
    init = config.init_from
    if init is None:
        return None
    return {
        "ue": _export_origin(init.ue),
        "ud": _export_origin(init.ud) if init.ud is not None else None,
        # A decoder-only run from the first step never changes the imported Ue.
        "ue_trained_here": config.decoder_only_steps < config.steps,
    }


def export_run(
    run_dir: Path,
    out_dir: Path,
    *,
    data_summary: dict[str, Any] | None = None,
    tolerance: float = 1e-4,
    seed: int = 0,
) -> dict[str, Any]:
    """Export a Learning II run to ``out_dir``; returns the model card written there.

    Existing ``ue.onnx``/``ud.onnx``/``card.json`` in ``out_dir`` are replaced only after the new
    files passed the parity check (other files there are kept).

    Raises:
        ExportParityError: ONNX Runtime disagrees with torch beyond ``tolerance``.
        models.checkpoint.CheckpointError, shared.config_base.ConfigError: bad run directory.
    """
    ue, ud, config, state = load_generators(run_dir)
    model_id = weights_id(ue, ud)
    size = config.input_size
    composition = config.composition.composition(size)
    dynamic = len(composition.sizes) > 1
    training = {
        "run": str(Path(run_dir).name),
        "steps": int(state["step"]),
        "seconds": round(float(state.get("elapsed_seconds", 0.0)), 1),
        "matcher": _matcher_summary(config.matcher_run),
        "init_from": _init_from_summary(config),
        "data": data_summary or {},
        "config": config.model_dump(mode="json"),
    }
    common = {
        "model_id": model_id,
        "input_size": str(size),
        "s": json.dumps(list(config.s)),
        "labels": json.dumps(list(config.labels)),
        "composition": json.dumps(composition.to_card()),
        "training": json.dumps({k: training[k] for k in ("run", "steps", "seconds")}),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as tmp:
        staging = Path(tmp)
        export_network(
            ue, "x", "a", 4, size, staging / ENCODER_FILE, {**common, "role": "ue"}, dynamic
        )
        export_network(
            ud, "a", "r", 3, size, staging / DECODER_FILE, {**common, "role": "ud"}, dynamic
        )
        card: dict[str, Any] = {
            "model_id": model_id,
            # A fresh pair's decoder is private; `uunet-train package --published` says otherwise.
            "decoder_published": False,
            "input_size": size,
            "s": list(config.s),
            "labels": list(config.labels),
            "composition": composition.to_card(),
            "architecture": architecture_of(config),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "training": training,
            "metrics": {},
        }
        (staging / CARD_FILE).write_text(json.dumps(card, indent=2), encoding="utf-8")
        parity = _parity(staging, ue, ud, composition.sizes, seed)
        worst = max(parity.values())
        if worst > tolerance:
            raise ExportParityError(
                f"ONNX Runtime differs from torch by {worst:.3g} (> {tolerance:g}): {parity}"
            )
        card["parity"] = {**parity, "tolerance": tolerance}
        (staging / CARD_FILE).write_text(json.dumps(card, indent=2), encoding="utf-8")
        for name in (ENCODER_FILE, DECODER_FILE, CARD_FILE):
            shutil.move(str(staging / name), str(out_dir / name))
    log.info("exported model %s to %s (parity %s)", model_id, out_dir, parity)
    return card
