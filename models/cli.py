"""``uunet-train``: pack data, train Da (matcher) and UU-Net (deid), export ONNX, measure.

    uunet-train pack     --out faces64.npz --lfw DIR ... (see ``uunet-train pack -h``)
    uunet-train matcher  --config matcher.yml --run runs/da  [--steps N] [--device cpu]
    uunet-train deid     --config deid.yml    --run runs/uu  [--matcher-run runs/da] [--steps N]
    uunet-train export   --run runs/uu --out models/weights/mine [--data-summary-from PACK]
    uunet-train evaluate --media DIR [--model DIR] --out REPORT_DIR
    uunet-train attack   --ue MODEL_DIR/ue.onnx --pack PACK --work DIR --out DIR [--minutes M]
    uunet-train attack-eval --model MODEL_DIR --attack DIR --identities DIR --report FILE

Every training command resumes from ``<run>/checkpoint.pt`` when it exists; SIGTERM/SIGINT
stop it cleanly after a checkpoint. Multi-GPU/multi-process: launch ``deid`` with
``torchrun --nproc_per_node N -m models.cli deid ...``. Exit codes: 0 done, 2 bad input
(config, data, checkpoint), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("uunet.train")

EXIT_BAD_INPUT = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="YAML training config")
    parser.add_argument("--run", type=Path, required=True, help="run directory (resumed if any)")
    parser.add_argument("--steps", type=int, help="override the config's total steps")
    parser.add_argument("--packed", type=Path, help="override data.packed")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.packed is not None:
        overrides["data.packed"] = str(args.packed)
        overrides["data.source"] = "packed"
    if getattr(args, "matcher_run", None) is not None:
        overrides["matcher_run"] = str(args.matcher_run)
    for name in ("decoder_only_steps", "warmup_steps"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    return overrides


def _setup_torch(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def _cmd_matcher(args: argparse.Namespace) -> int:
    from models.config import MatcherConfig, load_config
    from models.distributed import resolve_device
    from models.face_source import open_faces
    from models.runs import run_matcher

    _setup_torch(args)
    config = load_config(MatcherConfig, args.config, **_overrides(args))
    assert isinstance(config, MatcherConfig)
    device = resolve_device(args.device)
    pack = open_faces(config.data, config.input_size, config.labels, config.seed)
    metrics = run_matcher(config, args.run, pack, device, progress=not args.no_progress)
    print(json.dumps({"run": str(args.run), **metrics}, indent=2))
    return 0


def _cmd_deid(args: argparse.Namespace) -> int:
    from models.config import DeidConfig, load_config
    from models.distributed import init_distributed, shutdown_distributed
    from models.face_source import batch_stream, open_faces, preview_images, split_subjects
    from models.runs import load_trained_matcher, run_deid
    from shared.config_base import ConfigError

    _setup_torch(args)
    config = load_config(DeidConfig, args.config, **_overrides(args))
    assert isinstance(config, DeidConfig)
    context = init_distributed(args.device)
    try:
        matcher = None
        if config.matcher_run is None and config.needs_matcher:
            raise ConfigError(
                str(args.config),
                [
                    "matcher_run: a trained Da run is required (`uunet-train matcher`); an "
                    "untrained Da makes Lano, Lcon and Ldiv meaningless"
                ],
            )
        if config.matcher_run is not None:
            matcher = load_trained_matcher(
                config.matcher_run, labels=tuple(config.labels), input_size=config.input_size
            )
        pack = open_faces(config.data, config.input_size, config.labels, config.seed)
        train, held = split_subjects(pack, config.data.holdout_fraction, config.seed)
        stream = batch_stream(pack, train, config, context.rank, context.world_size)
        preview = preview_images(pack, held if len(held) else train, 8, config.seed)
        trainer = run_deid(
            config, args.run, matcher, stream, preview, context, progress=not args.no_progress
        )
        if context.is_main:
            print(json.dumps({"run": str(args.run), "step": trainer.step_count}))
    finally:
        shutdown_distributed()
    return 0


def _cmd_package(args: argparse.Namespace) -> int:
    from models.package import package_model

    packages = package_model(args.model, args.edge_out, args.decoders_out, published=args.published)
    print(
        json.dumps(
            {
                "model_id": packages.model_id,
                "edge": str(packages.edge_dir),
                "authority": str(packages.decoder_dir),
                "decoder_published": args.published,
            },
            indent=2,
        )
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from models.export import export_run

    summary = None
    if args.data_summary_from is not None:
        from models.config import DeidConfig, load_config
        from models.data import PackedFaces
        from models.face_source import training_use
        from models.runloop import RunDir

        pack = PackedFaces.open(args.data_summary_from)
        config = load_config(DeidConfig, RunDir(args.run).config)
        assert isinstance(config, DeidConfig)
        summary = {
            "pack": args.data_summary_from.name,
            **pack.summary,
            "used_by_training": training_use(pack, config),
        }
    card = export_run(args.run, args.out, data_summary=summary, tolerance=args.tolerance)
    print(
        json.dumps(
            {k: card[k] for k in ("model_id", "input_size", "s", "labels", "parity")}, indent=2
        )
    )
    return 0


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _cmd_attack(args: argparse.Namespace) -> int:
    import torch

    from models.attack import AttackSettings, run_attack
    from models.data import PackedFaces

    torch.set_num_threads(args.threads)
    settings = AttackSettings(
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        loss=args.loss,
        roi_sizes=args.roi_sizes,
        holdout_fraction=args.holdout_fraction,
        seed=args.seed,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
    )
    summary = run_attack(
        args.ue,
        PackedFaces.open(args.pack),
        args.work,
        args.out,
        settings,
        threads=args.threads,
        minutes=args.minutes,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    print(json.dumps({k: summary[k] for k in ("target_model_id", "steps", "held_l1")}))
    return 0


def _cmd_attack_eval(args: argparse.Namespace) -> int:
    from models.attack_eval import attack_file, evaluate_attack, render_table
    from models.evaluation.card import pool_identity_faces
    from models.evaluation.recognizers import make_recognizers
    from models.evaluation.report import json_ready
    from shared.model_dir import ModelDirError

    if not attack_file(args.attack).is_file():  # before minutes of face detection
        raise ModelDirError(f"{attack_file(args.attack)}: attack decoder not found")
    faces, sources = pool_identity_faces(
        args.identities, max_identities=args.max_identities, max_per_identity=args.max_per_identity
    )
    report = evaluate_attack(
        args.model,
        args.attack,
        faces,
        recognizers=make_recognizers([n for n in args.recognizers.split(",") if n], args.threads),
        roi_sizes=args.roi_sizes,
        seed=args.seed,
        threads=args.threads,
        max_impostors=args.max_impostors,
    )
    report["evaluation_data"] = sources
    report["arguments"] = {k: v for k, v in vars(args).items() if k != "func"}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_ready(report), indent=2, allow_nan=False)
    args.report.write_text(text + "\n", encoding="utf-8")
    for line in render_table(report["table"]):
        log.info("%s", line)
    log.info("report written to %s", args.report)
    return 0


def _attack_parsers(sub: argparse._SubParsersAction) -> None:
    from models.evaluation.config import DEFAULT_ROI_SIZES

    attack = sub.add_parser(
        "attack", help="train a decoder from ue.onnx alone (the attack on Ue, measured)"
    )
    attack.add_argument("--ue", type=Path, required=True, help="a model directory's ue.onnx")
    attack.add_argument("--pack", type=Path, required=True, help="face pack (its training split)")
    attack.add_argument("--work", type=Path, required=True, help="checkpoints (resumed if any)")
    attack.add_argument("--out", type=Path, required=True, help="where attack_ud.onnx goes")
    attack.add_argument("--steps", type=int, default=20_000, help="total steps (default 20000)")
    attack.add_argument("--minutes", type=float, help="wall-clock budget of this invocation")
    attack.add_argument("--batch", type=int, default=32)
    attack.add_argument("--lr", type=float, default=2e-4)
    attack.add_argument("--loss", choices=("mse", "l1"), default="mse")
    attack.add_argument("--roi-sizes", type=_ints, default=DEFAULT_ROI_SIZES, help="e.g. 64")
    attack.add_argument("--holdout-fraction", type=float, help="default: the card's training's")
    attack.add_argument("--seed", type=int, help="split seed (default: the card's training's)")
    attack.add_argument("--log-every", type=int, default=50)
    attack.add_argument("--checkpoint-every", type=int, default=500)
    attack.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    attack.add_argument("--no-progress", action="store_true", help="no progress bar")
    attack.set_defaults(func=_cmd_attack)

    evaluate = sub.add_parser(
        "attack-eval", help="the attacker's decoder beside the real Ud on held-out faces"
    )
    evaluate.add_argument("--model", type=Path, required=True, help="edge package or export")
    evaluate.add_argument("--attack", type=Path, required=True, help="attack_ud.onnx or its dir")
    evaluate.add_argument(
        "--identities", type=Path, action="append", required=True, help="held-out identities"
    )
    evaluate.add_argument("--max-identities", type=int, help="per folder")
    evaluate.add_argument("--max-per-identity", type=int, default=6)
    evaluate.add_argument("--recognizers", default="sface,dlib", help="comma list of sface,dlib")
    evaluate.add_argument("--roi-sizes", type=_ints, default=DEFAULT_ROI_SIZES)
    evaluate.add_argument("--max-impostors", type=int, default=200_000)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--threads", type=int, default=1)
    evaluate.add_argument("--report", type=Path, required=True, help="JSON report to write")
    evaluate.set_defaults(func=_cmd_attack_eval)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="uunet-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    matcher = sub.add_parser("matcher", help="Learning I: train the pairwise matcher Da")
    _common(matcher)
    matcher.set_defaults(func=_cmd_matcher)

    deid = sub.add_parser("deid", help="Learning II: train Ue, Ud and the critic")
    _common(deid)
    deid.add_argument("--matcher-run", type=Path, help="override matcher_run (a Da run dir)")
    deid.add_argument("--decoder-only-steps", type=int, help="override decoder_only_steps")
    deid.add_argument("--warmup-steps", type=int, help="override warmup_steps")
    deid.set_defaults(func=_cmd_deid)

    export = sub.add_parser("export", help="write ue.onnx, ud.onnx and card.json (checked)")
    export.add_argument("--run", type=Path, required=True, help="a deid run directory")
    export.add_argument("--out", type=Path, required=True, help="model directory to write")
    export.add_argument(
        "--data-summary-from", type=Path, help="pack whose summary goes in the card"
    )
    export.add_argument("--tolerance", type=float, default=1e-4, help="max |ORT - torch|")
    export.set_defaults(func=_cmd_export)

    package = sub.add_parser(
        "package", help="split an export into the edge package and the authority package"
    )
    package.add_argument("--model", type=Path, required=True, help="an export (ue+ud+card)")
    package.add_argument("--edge-out", type=Path, required=True, help="edge package to write")
    package.add_argument(
        "--decoders-out", type=Path, required=True, help="authority folder: <model id>/ud.onnx"
    )
    package.add_argument(
        "--published", action="store_true", help="the decoder is public (a demo model)"
    )
    package.set_defaults(func=_cmd_package)

    _attack_parsers(sub)

    # `pack` is dispatched to models.data's own parser before this one runs (see main()).
    sub.add_parser("pack", help="pack face datasets into one training file (pack -h for more)")

    try:
        from models.evaluation.cli import add_evaluate_arguments, run_evaluate
    except ImportError:  # the evaluation extra is not installed
        pass
    else:
        evaluate = sub.add_parser("evaluate", help="measure privacy and fidelity on media")
        add_evaluate_arguments(evaluate)
        evaluate.set_defaults(func=run_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``uunet-train``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pack"]:
        from models.data import DatasetError
        from models.data.pack import main as pack_main

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        try:
            return pack_main(argv[1:])
        except (DatasetError, ValueError, OSError) as exc:
            print(f"uunet-train pack: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from models.checkpoint import CheckpointError
    from models.data import DatasetError
    from shared.config_base import ConfigError

    try:
        return int(args.func(args))
    except (ConfigError, CheckpointError, DatasetError, ValueError, FileNotFoundError) as exc:
        print(f"uunet-train {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
