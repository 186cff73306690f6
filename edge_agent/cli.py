"""``uunet-edge``: run the edge agent, or check a configuration file.

    uunet-edge run --config /etc/uunet/edge.yml
    uunet-edge run --source clip.mp4 --evidence out/public.mkv [--public rtsp://...]
                   [--hls DIR] [--lossy rtsp://...|FILE] [--model DIR] [--max-frames N]
                   [--realtime|--no-realtime] [--seal-to authority.pub ...]
    uunet-edge validate-config /etc/uunet/edge.yml

Quick-form options override the file's values (``--seal-to`` adds to its recipients). Exit
codes: 0 done (source ended, max frames, or SIGTERM/SIGINT), 2 bad configuration or arguments
(also: an unusable or private sealing key file, or no output configured), 3 bad source (also:
a live source that never opened, with --exit-on-source-failure), 4 bad model (or a card that
fails the privacy thresholds), 5 detector unavailable, 6 missing or bad secret, 7 metrics port
unavailable, 8 a file source ended early (fewer frames decoded than its container declares, or
a decoding error part-way; counted in uunet_edge_source_incomplete_total).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge_agent import __version__
from edge_agent.app import EdgeAgent, build_agent
from edge_agent.config import EdgeSettings, camera_settings
from edge_agent.credentials import CAMERA_KEY_ENV, camera_key, camera_key_name
from edge_agent.face_sealing import load_recipients
from edge_agent.model_check import ModelRefusedError, check_model_privacy
from edge_agent.multi_camera import MultiCameraAgent, build_multi_camera_agent
from edge_agent.progress import file_run_progress
from edge_agent.sources import SourceError, parse_source
from shared.config_base import ConfigError, SecretNotFoundError, deep_merge, load_settings
from shared.detectors import (
    DetectorError,
    DetectorNotFoundError,
    DetectorUnavailableError,
    available_detectors,
)
from shared.log_safety import configure_logging
from shared.model_dir import ModelDirError, load_card
from shared.onnx_runner import ModelLoadError, ModelSignatureError, ProviderError
from shared.roi_message import MIN_KEY_BYTES
from shared.sealing_keys import SealingKeyError
from shared.secrets_check import WeakSecretError, check_secret

__all__ = ["load_edge_settings", "main"]

log = logging.getLogger("edge_agent")

EXIT_OK, EXIT_CONFIG, EXIT_SOURCE = 0, 2, 3
EXIT_MODEL, EXIT_DETECTOR, EXIT_SECRET, EXIT_METRICS, EXIT_SOURCE_INCOMPLETE = 4, 5, 6, 7, 8


def load_edge_settings(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> EdgeSettings:
    """Settings from a YAML file (optional), deep-merged with ``overrides``, then the env.

    Raises:
        ConfigError: unreadable file, not a mapping, or invalid values (with key paths).
    """
    try:
        return load_settings(EdgeSettings, path, **(overrides or {}))
    except ConfigError as exc:
        if path is not None:
            raise
        raise ConfigError("(command line)", exc.problems) from exc


def _run_settings(args: argparse.Namespace) -> EdgeSettings:
    """The settings of ``run``: the file, the quick-form options over it, ``--seal-to`` added
    to the file's recipients.

    Raises:
        ConfigError: see :func:`load_edge_settings`.
    """
    overrides = _overrides(args)
    settings = load_edge_settings(args.config, overrides)
    if not args.seal_to:
        return settings
    recipients = [str(p) for p in (*settings.sealed_faces.recipients, *args.seal_to)]
    extra = {"sealed_faces": {"recipients": recipients}}
    return load_edge_settings(args.config, deep_merge(overrides, extra))


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    source: dict[str, Any] = {}
    if args.source is not None:
        source["url"] = args.source
    if args.realtime is not None:
        source["realtime"] = args.realtime
    if args.exit_on_source_failure:
        source["exit_on_failure"] = True
    if source:
        out["source"] = source
    outputs: dict[str, Any] = {}
    if args.evidence is not None:
        outputs["evidence"] = {"path": args.evidence}
    if args.public is not None:
        outputs["rtsp"] = {"url": args.public}
    if args.hls is not None:
        outputs["hls"] = {"dir": args.hls}
    if args.lossy is not None:
        outputs["lossy"] = {"target": args.lossy}
    if outputs:
        out["outputs"] = outputs
    if args.model is not None:
        out["model"] = {"dir": args.model}
    if args.allow_public_decoder:
        out["privacy"] = {"allow_public_decoder": True}
    if args.detector is not None:
        out["detector"] = {"kind": args.detector}
    if args.message_format is not None:
        out["seal"] = {"message_format": args.message_format}
    if args.camera_id is not None:
        out["camera"] = {"id": args.camera_id}
    if args.max_frames is not None:
        out["max_frames"] = args.max_frames
    if args.metrics_port is not None:
        out["metrics"] = {"enabled": args.metrics_port != 0, "port": args.metrics_port}
    if args.log_level is not None:
        out["log_level"] = args.log_level
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uunet-edge",
        description="uunet edge agent: de-identify faces in a camera stream, fail-closed.",
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"uunet-edge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the agent")
    run.add_argument("--config", type=Path, help="YAML settings (deploy/edge.example.yml)")
    run.add_argument("--source", help="video file, rtsp:// URL or /dev/videoN")
    run.add_argument("--evidence", help="lossless recording: a .mkv/.mp4 file or a directory")
    run.add_argument("--public", help="publish to this rtsp:// URL (lossless RGB H.264)")
    run.add_argument("--hls", help="write an HLS fMP4 playlist into this directory")
    run.add_argument(
        "--lossy", help="lossy H.264 (message in SEI) to an rtsp:// URL or .mp4/.ts/.mkv file"
    )
    run.add_argument("--model", help="model directory (ue.onnx, card.json)")
    run.add_argument(
        "--allow-public-decoder",
        action="store_true",
        help="run a model whose decoder is public (the shipped demo model): no privacy",
    )
    run.add_argument("--detector", help=f"detector plug-in ({', '.join(available_detectors())})")
    run.add_argument("--message-format", choices=["v1", "paper"])
    run.add_argument(
        "--seal-to",
        action="append",
        type=Path,
        metavar="FILE.pub",
        help="seal each replaced face's original pixels to this authority public key "
        "(repeatable; adds to sealed_faces.recipients)",
    )
    run.add_argument("--camera-id")
    run.add_argument("--max-frames", type=int)
    run.add_argument("--metrics-port", type=int, help="0 disables /metrics and /healthz")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read a file at its frame rate (default: as fast as possible)",
    )
    run.add_argument(
        "--exit-on-source-failure",
        action="store_true",
        help="a live source that has not opened within source.open_timeout_s ends the run "
        "(exit 3) instead of being retried for ever",
    )
    check = commands.add_parser("validate-config", help="check a settings file and exit")
    check.add_argument("config", type=Path)
    return parser


NO_OUTPUT = (
    "no output configured (outputs.evidence, .rtsp, .hls or .lossy; or --evidence, --public, "
    "--hls, --lossy): every frame would be discarded"
)


def _has_output(settings: EdgeSettings) -> bool:
    out = settings.outputs
    return any(o is not None for o in (out.evidence, out.rtsp, out.hls, out.lossy))


def _camera_problems(where: str, settings: EdgeSettings, *, many: bool) -> list[str]:
    """What stops one camera's settings from running: its source, outputs and key (``where``:
    the key prefix of the camera's entry, ``""`` for a single-camera process)."""
    problems = []
    if settings.source.url:
        try:
            parse_source(settings.source.url)
        except SourceError as exc:
            problems.append(f"{where}source.url: {exc}")
    else:
        problems.append(f"{where}source.url: no source configured")
    if not _has_output(settings):
        problems.append(f"{where}outputs: {NO_OUTPUT}")
    if settings.seal.message_format == "v1":
        camera_id = settings.camera.id if many else None
        name = camera_key_name(camera_id)
        try:
            check_secret(name, camera_key(camera_id), MIN_KEY_BYTES)
        except (SecretNotFoundError, WeakSecretError) as exc:
            problems.append(f"{where}secret {name}: {exc}")
    return problems


def _validate(path: Path) -> int:
    try:
        settings = load_edge_settings(path)
    except ConfigError as exc:
        print(f"{path}: invalid", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    problems = []
    if settings.detector.kind not in available_detectors():
        known = ", ".join(available_detectors())
        problems.append(f"detector.kind: unknown detector {settings.detector.kind!r} ({known})")
    try:
        card = load_card(settings.model.dir)
        check_model_privacy(card.raw, settings.privacy, settings.model.dir)
    except (ModelDirError, ModelRefusedError) as exc:
        problems.append(f"model.dir: {exc}")
    cameras = (
        {f"cameras.{name}.": camera_settings(settings, name) for name in settings.cameras}
        if settings.cameras
        else {"": settings}
    )
    for where, single in cameras.items():
        problems += _camera_problems(where, single, many=bool(settings.cameras))
    try:
        load_recipients(settings.sealed_faces.recipients)
    except SealingKeyError as exc:
        problems.append(f"sealed_faces.recipients: {exc}")
    if problems:
        print(f"{path}: invalid", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{path}: OK")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    try:
        settings = _run_settings(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, stream=sys.stderr)  # one escaped line per record
    failures: list[tuple[tuple[type[BaseException], ...], int, str]] = [
        ((SourceError,), EXIT_SOURCE, "source"),
        (
            (ModelDirError, ModelRefusedError, ModelLoadError, ModelSignatureError, ProviderError),
            EXIT_MODEL,
            "model",
        ),
        (
            (DetectorNotFoundError, DetectorUnavailableError, DetectorError),
            EXIT_DETECTOR,
            "detector",
        ),
        ((SecretNotFoundError, WeakSecretError), EXIT_SECRET, "camera key"),
        ((SealingKeyError,), EXIT_CONFIG, "sealed_faces.recipients"),
    ]
    try:
        agent = build_multi_camera_agent(settings) if settings.cameras else build_agent(settings)
    except Exception as exc:
        for types, code, what in failures:
            if isinstance(exc, types):
                notes = "".join(f" [{note}]" for note in getattr(exc, "__notes__", ()))
                print(f"error ({what}): {exc}{notes}", file=sys.stderr)
                if code == EXIT_SECRET:
                    print(
                        f"  set {CAMERA_KEY_ENV} to a random key of >= {MIN_KEY_BYTES} bytes "
                        "(python3 -c 'import secrets; print(secrets.token_hex(32))') "
                        "or use --message-format paper",
                        file=sys.stderr,
                    )
                return code
        raise
    with _stopped_by_signals(agent):
        if isinstance(agent, MultiCameraAgent):
            return _run_cameras(agent)
        return _run_agent(agent, settings)


@contextmanager
def _stopped_by_signals(agent: EdgeAgent | MultiCameraAgent) -> Iterator[None]:
    """SIGTERM and SIGINT stop ``agent`` while the block runs; the earlier handlers come back
    after it (a handler left behind would keep the agent, and its frames, alive)."""
    signums = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.getsignal(signum) for signum in signums}
    for signum in signums:
        signal.signal(signum, lambda s, _f: agent.stop(f"signal {signal.Signals(s).name}"))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_agent(agent: EdgeAgent, settings: EdgeSettings) -> int:
    """Run a single-camera agent; print its summary; its exit code."""
    if not _has_output(settings):  # after the build, so a bad source/model/key has its own code
        print(f"error (configuration): {NO_OUTPUT}", file=sys.stderr)
        return EXIT_CONFIG
    progress = file_run_progress(agent.opener.spec, agent.stats)
    try:
        result = agent.run(on_frame=progress[0] if progress else None)
    except OSError as exc:
        print(f"error (metrics): cannot serve metrics: {exc}", file=sys.stderr)
        return EXIT_METRICS
    finally:
        if progress:
            progress[1]()
    summary = {"frames_processed": result.frames_processed, "stopped": result.reason}
    summary.update(result.stats)
    print(json.dumps(summary, indent=2, sort_keys=True))
    if result.error is not None:
        print(f"error (source): {result.error}", file=sys.stderr)
        return EXIT_SOURCE_INCOMPLETE if result.frames_processed else EXIT_SOURCE
    return EXIT_OK


def _run_cameras(agent: MultiCameraAgent) -> int:
    """Run a multi-camera process; print each camera's summary; the exit code of the worst
    camera (8 or 3 for a camera whose source failed, else 0)."""
    try:
        results = agent.run()
    except OSError as exc:
        print(f"error (metrics): cannot serve metrics: {exc}", file=sys.stderr)
        return EXIT_METRICS
    summary: dict[str, Any] = {}
    code = EXIT_OK
    for camera_id, result in results.items():
        summary[camera_id] = {"frames_processed": result.frames_processed, "stopped": result.reason}
        summary[camera_id].update(result.stats)
        if result.error is not None:
            print(f"error (source, camera {camera_id}): {result.error}", file=sys.stderr)
            failed = EXIT_SOURCE_INCOMPLETE if result.frames_processed else EXIT_SOURCE
            code = max(code, failed)
    print(json.dumps({"cameras": summary}, indent=2, sort_keys=True))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``uunet-edge``; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "validate-config":
        return _validate(args.config)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
