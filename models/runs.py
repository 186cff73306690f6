"""Whole training runs: create or resume a run directory, train, log, checkpoint, plot.

``run_matcher`` is Learning I (Da); ``run_deid`` is Learning II (Ue, Ud, Df). Both resume from
``<run>/checkpoint.pt`` when it exists (after a kill, or to extend ``steps``), refusing a
checkpoint of another architecture, and stop cleanly (checkpoint first) on SIGTERM/SIGINT.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.checkpoint import CheckpointError, load_checkpoint, load_module_state, save_checkpoint
from models.config import DeidConfig, MatcherConfig, load_config, save_config
from models.data import PackedFaces
from models.distributed import DistContext
from models.face_source import face_arrays, split_subjects
from models.networks.matcher import PairMatcher
from models.plots import plot_curves, save_sample_grid
from models.runloop import RunDir, run_steps
from models.train_matcher import (
    PairSampler,
    augment_pair,
    build_matcher,
    evaluate_matcher,
    matcher_step,
    pair_targets,
    to_tensor,
)
from models.train_uunet import Batch, UUNetTrainer, architecture_of

__all__ = ["load_trained_matcher", "matcher_architecture", "run_deid", "run_matcher"]

log = logging.getLogger(__name__)


def matcher_architecture(config: MatcherConfig) -> dict[str, Any]:
    return {
        "kind": "matcher",
        "matcher": config.network.matcher,
        "labels": list(config.labels),
        "input_size": config.input_size,
    }


def _prepare(run: RunDir, config: Any, architecture: dict[str, Any]) -> dict[str, Any] | None:
    """Create the run dir (saving the config) or return the checkpoint to resume from.

    Raises:
        CheckpointError: an existing checkpoint of another architecture.
    """
    run.create()
    state = None
    if run.checkpoint.is_file():
        state = load_checkpoint(run.checkpoint, architecture)
        run.truncate_history(int(state["step"]))
        log.info("resuming %s from step %d", run.path, state["step"])
    save_config(config, run.config)
    return state


def run_matcher(
    config: MatcherConfig,
    run_dir: Path,
    pack: PackedFaces,
    device: torch.device,
    progress: bool = True,
) -> dict[str, float]:
    """Train (or resume training) Da; returns the last held-out AUCs per label.

    Subjects are split per source (``data.holdout_fraction``); the AUCs are measured on pairs of
    held-out subjects (on training subjects when nothing is held out).

    Raises:
        ValueError: the pack lacks a configured label.
        CheckpointError: the run directory holds another architecture's checkpoint.
    """
    faces = face_arrays(pack, config.labels)
    run = RunDir(run_dir)
    state = _prepare(run, config, matcher_architecture(config))
    train_subjects, held_subjects = split_subjects(pack, config.data.holdout_fraction, config.seed)
    train_idx = np.flatnonzero(np.isin(faces.subject, train_subjects))
    hold_idx = np.flatnonzero(np.isin(faces.subject, held_subjects))
    if len(hold_idx) < 2:
        hold_idx = train_idx
    torch.manual_seed(config.seed)
    matcher = build_matcher(config.labels, config.input_size, config.network.matcher).to(device)
    optimiser = torch.optim.Adam(matcher.parameters(), lr=config.lr)
    start = 0
    sampler = PairSampler(
        faces.subject, train_idx, config.positive_fraction, config.seed, faces.group
    )
    generator = torch.Generator().manual_seed(config.seed)
    if state is not None:
        load_module_state(matcher, state["matcher"], "matcher", run.checkpoint)
        optimiser.load_state_dict(state["optimiser"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
        generator.set_state(state["torch_rng"])
        start = int(state["step"])
    metrics: dict[str, float] = {}

    def step(_: int) -> dict[str, float]:
        first, second = sampler.draw(config.batch_pairs)
        target, mask = pair_targets(faces.labels, faces.subject, first, second, config.labels)
        a, b = augment_pair(
            to_tensor(faces.images[first]), to_tensor(faces.images[second]), generator
        )
        loss = matcher_step(
            matcher,
            optimiser,
            a.to(device),
            b.to(device),
            torch.from_numpy(target).to(device),
            torch.from_numpy(mask).to(device),
        )
        return {"bce": loss}

    def on_log(current: int, values: dict[str, float]) -> None:
        run.append_history({"step": current, **values})

    def on_checkpoint(current: int) -> None:
        metrics.update(
            evaluate_matcher(matcher, faces, hold_idx, config.eval_pairs, config.seed + 1, device)
        )
        run.append_history({"step": current, **metrics})
        save_checkpoint(
            run.checkpoint,
            {
                "architecture": matcher_architecture(config),
                "step": current,
                "matcher": matcher.state_dict(),
                "optimiser": optimiser.state_dict(),
                "sampler_rng": sampler.rng.bit_generator.state,
                "torch_rng": generator.get_state(),
                "metrics": dict(metrics),
            },
        )
        (run.path / "metrics.json").write_text(json.dumps({"step": current, **metrics}, indent=2))
        plot_curves(run.read_history(), run.path / "curves.png", "Da (Learning I)")
        log.info("matcher step %d: %s", current, metrics)

    run_steps(
        start=start,
        schedule=config,
        step=step,
        on_log=on_log,
        on_checkpoint=on_checkpoint,
        progress=progress,
        description="Da",
    )
    return metrics


def load_trained_matcher(
    run_dir: Path,
    device: torch.device | None = None,
    *,
    labels: tuple[str, ...] | None = None,
    input_size: int | None = None,
) -> PairMatcher:
    """Da from a matcher run directory (its ``config.yml`` and ``checkpoint.pt``), checked
    against what Learning II expects of it.

    Args:
        labels: the label names, in order, that Learning II's ``s`` refers to; Da's heads
            must be exactly these (a matcher trained on [id, gender, ...] cannot serve a config
            whose second label is ethnicity).
        input_size: the crop side Learning II feeds Da.

    Raises:
        CheckpointError: missing or incompatible files, other labels or label order, another
            input size, or a run that never reached a checkpoint with held-out figures (an
            untrained Da would make Lano, Lcon and Ldiv meaningless).
        shared.config_base.ConfigError: an invalid ``config.yml``.
    """
    run = RunDir(run_dir)
    if not run.config.is_file():
        raise CheckpointError(f"{run.path}: not a matcher run (no config.yml)")
    config = load_config(MatcherConfig, run.config)
    assert isinstance(config, MatcherConfig)
    if labels is not None and tuple(config.labels) != tuple(labels):
        raise CheckpointError(
            f"{run.path}: Da was trained for the labels {list(config.labels)}, but Learning II "
            f"names {list(labels)} (same names in the same order are needed)"
        )
    if input_size is not None and config.input_size != input_size:
        raise CheckpointError(
            f"{run.path}: Da takes {config.input_size}x{config.input_size} crops, Learning II "
            f"uses input_size {input_size}"
        )
    if not run.checkpoint.is_file():
        raise CheckpointError(f"{run.path}: Da is not trained (no checkpoint.pt)")
    state = load_checkpoint(run.checkpoint, matcher_architecture(config))
    if int(state.get("step", 0)) < 1 or not state.get("metrics"):
        raise CheckpointError(
            f"{run.path}: Da's checkpoint holds no held-out figures (step "
            f"{state.get('step', 0)}): train it first (`uunet-train matcher`)"
        )
    matcher = build_matcher(config.labels, config.input_size, config.network.matcher)
    load_module_state(matcher, state["matcher"], "matcher", run.checkpoint)
    matcher.eval()
    return matcher.to(device) if device is not None else matcher


def run_deid(
    config: DeidConfig,
    run_dir: Path,
    matcher: PairMatcher | None,
    batches: Callable[[int], Iterator[Batch]],
    preview: torch.Tensor,
    context: DistContext,
    progress: bool = True,
) -> UUNetTrainer:
    """Train (or resume) Ue/Ud/Df. ``batches(seed)`` yields P x J x K batches forever.

    ``preview`` (``M x 3 x S x S``) is drawn as x | a | r in ``samples_<step>.png`` at every
    checkpoint. Only the main process (rank 0) writes files.

    ``matcher`` may be None when the configuration uses none of Da's terms (a decoder-only run
    on an imported Ue, ``init_from``).

    Raises:
        ValueError: the matcher does not fit the config's labels, or is missing.
        CheckpointError: the run directory holds another architecture's checkpoint.
        models.onnx_import.OnnxImportError: ``init_from`` names an export that does not fit.
    """
    run = RunDir(run_dir)
    state = (
        _prepare(run, config, architecture_of(config))
        if context.is_main
        else (load_checkpoint(run.checkpoint) if run.checkpoint.is_file() else None)
    )
    torch.manual_seed(config.seed + context.rank)
    trainer = UUNetTrainer(config, matcher, context.device, distributed=context.distributed)
    if state is not None:
        trainer.load_state_dict(state, run.checkpoint)
    else:
        trainer.initialise_from_exports()
    if config.weights.idt and trainer.identity_targets is None:
        trainer.fit_identity_targets(_target_faces(batches, config))
    start = trainer.step_count
    stream = batches(config.seed + 1000 * context.rank + start)
    started = time.monotonic()
    preview = preview.to(context.device)
    fixed_noise = torch.rand(
        preview.shape[0], 1, *preview.shape[2:], generator=torch.Generator().manual_seed(7)
    ).to(context.device)

    def step(_: int) -> dict[str, float]:
        return trainer.step(next(stream))

    def on_log(current: int, values: dict[str, float]) -> None:
        if context.is_main:
            run.append_history({"step": current, **values})

    def on_checkpoint(current: int) -> None:
        if not context.is_main:
            return
        full = trainer.state_dict()
        full["elapsed_seconds"] = float(state.get("elapsed_seconds", 0.0) if state else 0.0) + (
            time.monotonic() - started
        )
        save_checkpoint(run.checkpoint, full)
        history = run.read_history()
        plot_curves(history, run.path / "curves.png", "UU-Net (Learning II)")
        trainer.ue.eval()
        trainer.ud.eval()
        with torch.no_grad():
            a = trainer.ue(torch.cat([preview, fixed_noise], dim=1))
            r = trainer.ud(a)
        save_sample_grid([preview, a, r], run.path / f"samples_{current:07d}.png")
        log.info("deid step %d saved", current)

    run_steps(
        start=start,
        schedule=config,
        step=step,
        on_log=on_log,
        on_checkpoint=on_checkpoint,
        progress=progress and context.is_main,
        description="UU-Net",
    )
    return trainer


def _target_faces(batches: Callable[[int], Iterator[Batch]], config: DeidConfig) -> torch.Tensor:
    """``identity_target_faces`` training faces from their own stream (the same on every rank,
    so every process fits the same targets)."""
    stream = batches(config.seed + 7919)
    faces: list[torch.Tensor] = []
    while sum(len(f) for f in faces) < config.identity_target_faces:
        faces.append(next(stream).x)
    return torch.cat(faces)[: config.identity_target_faces]


def summarise_history(run_dir: Path) -> dict[str, float]:
    """The last logged values of a run (for model cards)."""
    history = RunDir(run_dir).read_history()
    return {k: v for k, v in (history[-1] if history else {}).items() if isinstance(v, float)}
