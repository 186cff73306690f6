"""The attack on ``Ue``: a decoder of one's own, trained from ``(x, Ue(x))`` pairs alone.

Threat: every camera ships ``Ue`` (``ue.onnx``). Whoever copies one camera's edge package can
de-identify any face photo exactly as the camera does (:class:`models.attack_pairs.
CameraEncoder`) and train a decoder on the pairs, with no access to the authority's ``Ud``.
This module is that attacker, so that what it reaches can be measured
(:mod:`models.attack_eval`)::

    uunet-train attack --ue models/weights/default/ue.onnx --pack runs/faces64.npz \\
        --work runs/attack/work --out runs/attack/out --minutes 40 --threads 1

* **data**: public faces, i.e. the pack's training split (``split_subjects`` with the
  fraction and seed of the model's own training, read from its card, so the people it held out,
  whom the evaluation's held-out sets are made of, are never used); ``held_faces`` of the
  held-out subjects (one photo each) only monitor ``held_l1`` (mean |r - x|, model tensors);
* **pairs**: each step draws ``batch`` faces and one ROI side from ``roi_sizes`` (by default
  the sizes the card's figures are measured at), and runs them through the camera's code;
* **decoder**: this repository's U-Net (:class:`models.networks.unet.UNet`) with the
  architecture the card states (width, norm, cap): the network ``Ud`` is; it never opens
  ``ud.onnx``;
* **loss**: MSE (``Ud``'s ``Lmse``) or L1, Adam (as ``Ud``'s optimiser);
* **budget**: ``steps`` and/or a wall-clock ``minutes``; ``--work`` holds ``checkpoint.pt``
  (resumed when present; a checkpoint of another target model, decoder or data split is
  refused), ``history.jsonl``, ``curves.png`` and ``samples_<step>.png`` (x | a | r of
  held-out faces); SIGTERM/SIGINT checkpoint and stop;
* **output**: ``<out>/attack_ud.onnx`` (``a`` -> ``r`` as ``ud.onnx``; metadata ``role``
  ``attack_ud``, ``target_model_id``, its own ``model_id``), checked against torch in ONNX
  Runtime, and ``<out>/attack.json`` (what was trained on, how long, ``held_l1`` at step 0 and
  at the end).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from models.attack_pairs import CameraEncoder
from models.checkpoint import load_checkpoint, load_module_state, save_checkpoint
from models.data import PackedFaces
from models.evaluation.config import DEFAULT_ROI_SIZES
from models.export import ExportParityError, export_network, max_abs_diff, weights_id
from models.face_source import split_subjects
from models.losses import reconstruction_loss
from models.networks import define_unet
from models.plots import plot_curves, save_sample_grid
from models.runloop import RunDir, run_steps
from shared.model_dir import ModelCard, ModelDirError
from shared.onnx_runner import OnnxModel, TensorSpec

__all__ = [
    "ATTACK_FILE",
    "ATTACK_ROLE",
    "AttackSettings",
    "build_attack_decoder",
    "load_attack_decoder",
    "run_attack",
]

log = logging.getLogger(__name__)

ATTACK_FILE = "attack_ud.onnx"
ATTACK_ROLE = "attack_ud"
SUMMARY_FILE = "attack.json"
#: Track ids of the held-out monitor's noise planes (training uses 0, 1, 2, ...).
_HELD_IDS = 1 << 40


@dataclass(frozen=True)
class AttackSettings:
    """How the attacker trains (module docstring). ``holdout_fraction``/``seed`` ``None``: the
    card's training split (0.05 and 0 when the card says none, or a fraction of 0).

    Raises:
        ValueError: a value out of range.
    """

    steps: int = 20_000
    batch: int = 32
    lr: float = 2e-4
    loss: str = "mse"
    roi_sizes: tuple[int, ...] = DEFAULT_ROI_SIZES
    holdout_fraction: float | None = None
    seed: int | None = None
    log_every: int = 50
    checkpoint_every: int = 500
    held_faces: int = 64

    def __post_init__(self) -> None:
        if min(self.steps, self.batch, self.log_every, self.checkpoint_every) < 1:
            raise ValueError("steps, batch, log_every and checkpoint_every must be >= 1")
        if self.loss not in ("mse", "l1"):
            raise ValueError(f"loss must be mse or l1, got {self.loss!r}")
        if not self.roi_sizes or min(self.roi_sizes) < 4:
            raise ValueError(f"ROI sizes must be >= 4 pixels, got {list(self.roi_sizes)}")
        if self.lr <= 0 or self.held_faces < 1:
            raise ValueError("lr must be > 0 and held_faces >= 1")
        if self.holdout_fraction is not None and not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")


def training_split(card: ModelCard, settings: AttackSettings) -> tuple[float, int]:
    """(holdout fraction, seed): the settings', else those of the model's own training."""
    config = (card.raw.get("training") or {}).get("config") or {}
    fraction = settings.holdout_fraction
    if fraction is None:
        fraction = float((config.get("data") or {}).get("holdout_fraction") or 0.05)
    seed = settings.seed if settings.seed is not None else int(config.get("seed", 0))
    return fraction, seed


def decoder_architecture(card: ModelCard) -> dict[str, Any]:
    """The U-Net the card states (``architecture``; UNet's defaults where it says nothing).

    Raises:
        ModelDirError: an ``architecture`` entry that is not an object or holds bad values.
    """
    stated = card.raw.get("architecture", {})
    if not isinstance(stated, dict):
        raise ModelDirError(f"model {card.model_id}: card architecture must be a JSON object")
    try:
        return {
            "unet": str(stated.get("unet", "unet")),
            "width": int(stated.get("unet_width", 32)),
            "norm": str(stated.get("unet_norm", "group")),
            "max_multiplier": int(stated.get("unet_max_multiplier", 8)),
        }
    except (TypeError, ValueError) as exc:
        raise ModelDirError(f"model {card.model_id}: bad card architecture: {exc}") from exc


def build_attack_decoder(card: ModelCard) -> nn.Module:
    """A fresh decoder: the repository's U-Net, RGB in, at the card's input size.

    Raises:
        ModelDirError: the card's architecture cannot be built.
    """
    arch = decoder_architecture(card)
    try:
        return define_unet(
            arch.pop("unet"), in_channels=3, input_size=card.input_size, dropout=0.0, **arch
        )
    except ValueError as exc:
        raise ModelDirError(f"model {card.model_id}: card architecture: {exc}") from exc


def load_attack_decoder(path: Path, card: ModelCard, *, threads: int = 1) -> OnnxModel:
    """``attack_ud.onnx`` in ONNX Runtime, checked to be an attack decoder of ``card``'s model.

    Raises:
        ModelDirError: another role or another target model in its metadata.
        shared.onnx_runner.ModelLoadError / ModelSignatureError: not a decoder ONNX file.
    """
    side = card.composition.sizes[0] if len(card.composition.sizes) == 1 else None
    model = OnnxModel(
        path,
        inputs=[TensorSpec("a", (None, 3, side, side))],
        outputs=[TensorSpec("r", (None, 3, side, side))],
        warmup_shape=(1, 3, card.input_size, card.input_size),
        providers="cpu",
        threads=threads,
    )
    role, target = model.metadata.get("role"), model.metadata.get("target_model_id")
    if role != ATTACK_ROLE or target != card.model_id:
        raise ModelDirError(
            f"{path}: role {role!r} for model {target!r}, expected {ATTACK_ROLE!r} for "
            f"{card.model_id!r}"
        )
    return model


def export_attack_decoder(
    decoder: nn.Module, out_dir: Path, card: ModelCard, training: dict[str, Any]
) -> dict[str, Any]:
    """Write ``<out_dir>/attack_ud.onnx`` (replaced only once ONNX Runtime matches torch within
    1e-4 at every model size); returns its parity figures and ids.

    Raises:
        ExportParityError: ONNX Runtime differs from torch beyond 1e-4.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    decoder = decoder.eval()
    sizes = card.composition.sizes
    meta = {
        "model_id": weights_id(decoder),
        "role": ATTACK_ROLE,
        "target_model_id": card.model_id,
        "input_size": str(card.input_size),
        "composition": json.dumps(card.composition.to_card()),
        "training": json.dumps(training),
    }
    staging = out_dir / (ATTACK_FILE + ".tmp")
    export_network(decoder, "a", "r", 3, card.input_size, staging, meta, len(sizes) > 1)
    model = load_attack_decoder(staging, card)
    rng = np.random.default_rng(0)
    worst = max(
        max_abs_diff(model, decoder, rng.random((4, 3, s, s), dtype=np.float32)) for s in sizes
    )
    if worst > 1e-4:
        staging.unlink()
        raise ExportParityError(f"ONNX Runtime differs from torch by {worst:.3g} (> 0.0001)")
    os.replace(staging, out_dir / ATTACK_FILE)
    return {"model_id": meta["model_id"], "max_abs_diff": worst, "tolerance": 1e-4}


def _rows(pack: PackedFaces, subjects: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(pack.subject, subjects))


def run_attack(
    ue_path: Path,
    pack: PackedFaces,
    work_dir: Path,
    out_dir: Path,
    settings: AttackSettings,
    *,
    threads: int = 1,
    minutes: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) the attacker's decoder on ``pack`` and export it; returns the summary
    written to ``<out_dir>/attack.json``.

    Raises:
        ModelDirError, shared.onnx_runner.ModelLoadError / ModelSignatureError: a missing or
            wrong ``ue.onnx``, or a missing or malformed card.
        models.checkpoint.CheckpointError: ``work_dir`` holds another attack's checkpoint.
        ValueError: the split leaves no training or no held-out faces.
        ExportParityError: see :func:`export_attack_decoder`.
    """
    camera = CameraEncoder(ue_path, secret=b"uunet-attack-noise", threads=threads)
    card = camera.card
    fraction, seed = training_split(card, settings)
    train_subjects, held_subjects = split_subjects(pack, fraction, seed)
    train_rows, held_rows = _rows(pack, train_subjects), _rows(pack, held_subjects)
    if not len(train_rows) or not len(held_rows):
        raise ValueError(
            f"split {fraction}/{seed} leaves {len(train_rows)} training and "
            f"{len(held_rows)} held-out faces of {len(pack)}"
        )
    held_rows = held_rows[np.unique(pack.subject[held_rows], return_index=True)[1]]
    held_rows = held_rows[: settings.held_faces]
    architecture = {
        "kind": "attack_decoder",
        "target_model_id": card.model_id,
        "input_size": card.input_size,
        **decoder_architecture(card),
        "holdout_fraction": fraction,
        "split_seed": seed,
    }
    run = RunDir(work_dir)
    run.create()
    torch.manual_seed(seed)
    decoder = build_attack_decoder(card)
    optimiser = torch.optim.Adam(decoder.parameters(), lr=settings.lr, betas=(0.5, 0.999))
    rng = np.random.default_rng(seed)
    start, elapsed = 0, 0.0
    if run.checkpoint.is_file():
        state = load_checkpoint(run.checkpoint, architecture)
        load_module_state(decoder, state["decoder"], "decoder", run.checkpoint)
        optimiser.load_state_dict(state["optimiser"])
        for group in optimiser.param_groups:
            group["lr"] = settings.lr
        rng.bit_generator.state = state["rng"]
        start, elapsed = int(state["step"]), float(state["elapsed_seconds"])
        run.truncate_history(start)
        log.info("resuming the attack in %s from step %d", run.path, start)
    (run.path / "settings.json").write_text(
        json.dumps({"ue": str(ue_path), "pack": str(pack.path), **asdict(settings)}, indent=2)
    )
    held_a, held_x = camera.pairs(
        [pack.image(int(r)) for r in held_rows],
        card.input_size,
        [_HELD_IDS + i for i in range(len(held_rows))],
    )
    held_a_t, held_x_t = torch.from_numpy(held_a), torch.from_numpy(held_x)

    def held_l1() -> float:
        decoder.eval()
        with torch.no_grad():
            return float((decoder(held_a_t) - held_x_t).abs().mean())

    if start == 0:
        run.append_history({"step": 0, "held_l1": held_l1()})
    started = time.monotonic()
    loss_of = reconstruction_loss if settings.loss == "mse" else lambda x, r: F.l1_loss(r, x)

    def step(current: int) -> dict[str, float]:
        rows = np.sort(rng.choice(train_rows, size=settings.batch))
        roi = int(rng.choice(np.asarray(settings.roi_sizes)))
        ids = range(current * settings.batch, (current + 1) * settings.batch)
        public, x = camera.pairs([pack.image(int(r)) for r in rows], roi, ids)
        decoder.train()
        loss = loss_of(torch.from_numpy(x), decoder(torch.from_numpy(public)))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return {settings.loss: float(loss.detach())}

    def on_log(current: int, values: dict[str, float]) -> None:
        run.append_history({"step": current, **values, "held_l1": held_l1()})

    def on_checkpoint(current: int) -> None:
        save_checkpoint(
            run.checkpoint,
            {
                "architecture": architecture,
                "step": current,
                "decoder": decoder.state_dict(),
                "optimiser": optimiser.state_dict(),
                "rng": rng.bit_generator.state,
                "elapsed_seconds": elapsed + time.monotonic() - started,
            },
        )
        plot_curves(run.read_history()[1:], run.path / "curves.png", "attack decoder")
        decoder.eval()
        with torch.no_grad():
            r = decoder(held_a_t[:8])
        save_sample_grid([held_x_t[:8], held_a_t[:8], r], run.path / f"samples_{current:07d}.png")

    deadline = time.monotonic() + 60.0 * minutes if minutes is not None else None
    last = run_steps(
        start=start,
        schedule=settings,
        step=step,
        on_log=on_log,
        on_checkpoint=on_checkpoint,
        progress=progress,
        description="attack decoder",
        deadline=deadline,
    )
    history = run.read_history()
    seconds = round(elapsed + time.monotonic() - started, 1)
    summary: dict[str, Any] = {
        "target_model_id": card.model_id,
        "ue": str(ue_path),
        "pack": str(pack.path) if pack.path is not None else None,
        "split": {
            "holdout_fraction": fraction,
            "seed": seed,
            "training_subjects": len(train_subjects),
            "training_faces": len(train_rows),
            "held_out_subjects": len(held_subjects),
        },
        "steps": last,
        "seconds": seconds,
        "threads": threads,
        "settings": asdict(settings),
        "decoder": decoder_architecture(card),
        "held_l1": {
            "step_0": history[0].get("held_l1") if history else None,
            "last": held_l1(),
            "faces": len(held_rows),
        },
    }
    summary["export"] = export_attack_decoder(
        decoder, Path(out_dir), card, {"steps": last, "seconds": seconds}
    )
    (Path(out_dir) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    log.info(
        "attack decoder after %d steps (%.0f s): held-out L1 %s", last, seconds, summary["held_l1"]
    )
    return summary
