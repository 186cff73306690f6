"""``uunet-train``: pack data, train Da (matcher) and UU-Net (deid), export ONNX, measure.

    uunet-train pack     --out faces64.npz --lfw DIR ... (see ``uunet-train pack -h``)
    uunet-train matcher  --config matcher.yml --run runs/da  [--steps N] [--device cpu]
    uunet-train deid     --config deid.yml    --run runs/uu  [--matcher-run runs/da] [--steps N]
    uunet-train export   --run runs/uu --out models/weights/mine [--data-summary-from PACK]
    uunet-train evaluate --media DIR [--model DIR] --out REPORT_DIR

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
        if config.matcher_run is None:
            raise ConfigError(
                str(args.config),
                [
                    "matcher_run: a trained Da run is required (`uunet-train matcher`); an "
                    "untrained Da makes Lano, Lcon and Ldiv meaningless"
                ],
            )
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

    packages = package_model(
        args.model, args.edge_out, args.decoders_out, published=args.published
    )
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
