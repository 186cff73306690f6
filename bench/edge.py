"""Edge agent throughput, side by side in one run: our pipeline, the codec alone, and deface.

    python bench/edge.py [--clip ../shared/media/videos/hamilton_640x360.mp4]
                         [--size 1920x1080,640x360,640x480] [--frames 150]
                         [--model models/weights/default] [--detector yunet]
                         [--providers cuda,cpu] [--fp16] [--trt-cache DIR] [--quick]
                         [--detector-providers cuda,cpu]
                         [--variants default,no-low-light,full-size,x264rgb] [--no-deface]

For each ``--size``, the clip is first resized to it and written once as H.264 (yuv420p, CRF
18): that file plays the camera for all contenders, which all decode it themselves. Each row
gives frames/s, the ratio to the codec alone (the ceiling) and to deface, and, for the agent,
its peak resident memory during the run (each agent runs in a fresh process; ``VmHWM`` after
resetting it, Linux).

* ``codec``: decode + lossless encode (libx264rgb qp 0, the evidence/RTSP encoding): the
  ceiling of any pipeline that writes a message-preserving stream.
* ``uunet-edge``: the real agent (``edge_agent.app``: capture thread, detect, track, Ue,
  paste, seal, evidence writer thread), file read as fast as possible, FFV1 evidence output;
  with its per-stage mean latencies (detect, Ue per face, seal = HMAC + LSB embed, encode);
  ``--variants``: the default settings (the detector at full size), without the detector's
  low-light pass, detecting at full size (``max_input_side: null``, the default since the
  shrunk path lost recall), the shrunk path above 1280 px (``max_input_side: 640``:
  full-resolution regions around small faces, ``edge_agent.config.DetectorSettings``), with
  the libx264rgb evidence encoder instead of FFV1, with a 3-frame look-ahead, detecting on
  every 2nd or 3rd frame only (``margins.detect_every``: the frames between interpolated along
  the look-ahead's tracks), with YuNet on OpenCV's DNN module instead of ONNX Runtime.
* ``deface``: deface 1.5.0's own video pipeline (``deface.deface.video_detect``: imageio read,
  CenterFace on ONNX Runtime's CPU provider, ellipse blur, libx264 write), default threshold.

``--providers`` (``auto``: TensorRT, CUDA, then CPU) and ``--fp16`` / ``--trt-cache`` run ``Ue``
on a GPU (the ``gpu`` extra; ``model.gpu`` of the edge settings), ``--detector-providers``
YuNet (CUDA, never TensorRT: ``detector.options.providers``); ``--quick`` runs the default
agent alone, without deface (``bench/edge_gpu.sh``, on a lent GPU box).

Needs the ``bench`` extra (deface is installed with --no-deps, see pyproject.toml). Without a
trained model give any exported directory with ``--model`` (an untrained U-Net of the same
architecture has the same cost); the toy model of the tests is far cheaper than a real Ue.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.app import build_agent
from edge_agent.cli import load_edge_settings
from edge_agent.credentials import CAMERA_KEY_ENV
from shared.video_io import LosslessWriter, probe, read_frames

REPO = Path(__file__).resolve().parents[1]


def _make_camera_clip(source: Path, size: tuple[int, int], frames: int, out: Path) -> int:
    info = probe(source)
    count = 0
    with av.open(str(out), mode="w") as container:
        stream = container.add_stream("libx264", rate=info.fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "18", "preset": "fast"}
        stream.time_base = 1 / Fraction(info.fps)
        for frame in read_frames(source):
            if count >= frames:
                break
            rgb = cv2.resize(frame.rgb, size, interpolation=cv2.INTER_AREA)
            video = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            video.pts = count
            for packet in stream.encode(video):
                container.mux(packet)
            count += 1
        for packet in stream.encode(None):
            container.mux(packet)
    return count


def bench_codec(clip: Path, out: Path) -> float:
    info = probe(clip)
    start = time.perf_counter()
    count = 0
    with LosslessWriter(out, info.width, info.height, info.fps, codec="libx264rgb") as writer:
        for frame in read_frames(clip):
            writer.write(frame.rgb)
            count += 1
    return count / (time.perf_counter() - start)


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs`` 5); false where that is refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_mib() -> float:
    """Peak RSS since the last reset (``VmHWM``), else since start (``getrusage``), in MiB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_edge(
    clip: Path,
    model: Path,
    detector: str,
    out: Path,
    model_settings: dict[str, object] | None = None,
    evidence_codec: str | None = None,
    margins: dict[str, object] | None = None,
    **overrides: object,
) -> tuple[float, dict, float]:
    """Run the agent on ``clip``; return frames/s, its stats and its peak RSS (MiB).

    ``model_settings``: more ``model`` keys (``providers``, ``gpu``); ``evidence_codec``:
    ``outputs.evidence.codec`` (default: the agent's); ``margins``: ``margins`` keys;
    ``overrides``: detector's.
    """
    os.environ.setdefault(CAMERA_KEY_ENV, "bench-camera-key-0123456789")
    detector_settings: dict[str, object] = {"kind": detector, **overrides}
    evidence: dict[str, object] = {"path": str(out), "queue_size": 256}
    if evidence_codec is not None:
        evidence["codec"] = evidence_codec
    settings = load_edge_settings(
        None,
        {
            "source": {"url": str(clip), "queue_size": 8},
            "model": {"dir": str(model), **(model_settings or {})},
            # the shipped demo model's decoder is public: fine for measuring its cost
            "privacy": {"allow_public_decoder": True},
            "detector": detector_settings,
            "outputs": {"evidence": evidence},
            "margins": margins or {},
            "metrics": {"enabled": False},
        },
    )
    _reset_peak_rss()
    agent = build_agent(settings)
    providers = agent.processor.deidentifier.encoder.providers
    print(f"  Ue runs on {', '.join(providers)}", flush=True)
    start = time.perf_counter()
    result = agent.run()
    elapsed = time.perf_counter() - start
    return result.frames_processed / elapsed, result.stats, _peak_rss_mib()


def bench_deface(clip: Path, out: Path) -> float | str:
    try:
        from deface.centerface import CenterFace
        from deface.deface import video_detect
    except ImportError as exc:
        return f"unavailable ({exc}; install the bench extra and deface --no-deps)"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        centerface = CenterFace(
            in_shape=None, backend="onnxrt", override_execution_provider="CPUExecutionProvider"
        )
        count = probe(clip).frames or sum(1 for _ in read_frames(clip))
        start = time.perf_counter()
        video_detect(
            ipath=str(clip),
            opath=str(out),
            centerface=centerface,
            threshold=0.2,
            enable_preview=False,
            cam=False,
            nested=False,
            replacewith="blur",
            mask_scale=1.3,
            ellipse=True,
            draw_scores=False,
            ffmpeg_config={"codec": "libx264"},
        )
        elapsed = time.perf_counter() - start
    return count / elapsed


#: ``--variants`` key: (row name, :func:`bench_edge` keywords: detector overrides, or
#: ``evidence_codec`` / ``margins``).
EDGE_VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "default": ("uunet-edge (detect+Ue+seal+FFV1; default)", {}),
    "no-low-light": ("uunet-edge, no low-light pass", {"low_light_gamma": None}),
    "full-size": ("uunet-edge, detect at full size", {"max_input_side": None}),
    "shrunk": ("uunet-edge, shrunk path above 1280 px", {"max_input_side": 640}),
    "x264rgb": ("uunet-edge, evidence libx264rgb", {"evidence_codec": "libx264rgb"}),
    "shrunk-x264rgb": (
        "uunet-edge, shrunk path, evidence libx264rgb",
        {"max_input_side": 640, "evidence_codec": "libx264rgb"},
    ),
    "lookahead-3": ("uunet-edge, look-ahead 3 frames", {"margins": {"lookahead_frames": 3}}),
    # YuNet on OpenCV's DNN module, the engine before ONNX Runtime (shared.detectors.yunet)
    "yunet-opencv": ("uunet-edge, YuNet on OpenCV", {"options": {"engine": "opencv"}}),
    "yunet-opencv-x264rgb": (
        "uunet-edge, YuNet on OpenCV, evidence x264rgb",
        {"options": {"engine": "opencv"}, "evidence_codec": "libx264rgb"},
    ),
    "yunet-opencv-every-3-x264rgb": (
        "uunet-edge, YuNet on OpenCV, every 3 frames, evidence x264rgb",
        {
            "options": {"engine": "opencv"},
            "margins": {"detect_every": 3},
            "evidence_codec": "libx264rgb",
        },
    ),
}
# margins.detect_every N (the detector on every Nth frame), alone and with libx264rgb evidence
for _n in (2, 3, 4):
    EDGE_VARIANTS[f"every-{_n}"] = (
        f"uunet-edge, detect every {_n} frames",
        {"margins": {"detect_every": _n}},
    )
    EDGE_VARIANTS[f"every-{_n}-x264rgb"] = (
        f"uunet-edge, every {_n} frames, evidence x264rgb",
        {"margins": {"detect_every": _n}, "evidence_codec": "libx264rgb"},
    )


def bench_size(args: argparse.Namespace, width: int, height: int, tmpdir: Path) -> None:
    """Print the side-by-side table for one camera size."""
    clip = tmpdir / f"camera_{width}x{height}.mp4"
    frames = _make_camera_clip(args.clip, (width, height), args.frames, clip)
    print(f"\nclip: {args.clip.name} -> {width}x{height}, {frames} frames (H.264 CRF 18)")
    codec = bench_codec(clip, tmpdir / "codec.mkv")
    # each agent in a fresh process, so its peak RSS is its own (not what earlier runs left)
    spawn = multiprocessing.get_context("spawn")
    runs = []
    model_settings = _model_settings(args)
    keys = ["default"] if args.quick else args.variants.split(",")
    for name, extra in (EDGE_VARIANTS[key] for key in keys):
        options = dict(extra.get("options", {}))  # type: ignore[call-overload]
        if args.detector_providers != "cpu" and options.get("engine") != "opencv":
            options["providers"] = args.detector_providers.split(",")
            extra = {**extra, "options": options}
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            job = pool.submit(
                bench_edge,
                clip,
                args.model,
                args.detector,
                tmpdir / "evidence.mkv",
                model_settings,
                **extra,
            )
            runs.append((name, *job.result()))
    skip = args.quick or args.no_deface
    deface = "skipped" if skip else bench_deface(clip, tmpdir / "deface.mp4")
    print(f"{'pipeline':<46} {'frames/s':>9} {'vs codec':>9} {'vs deface':>10} {'peak MiB':>9}")
    rows = [("codec alone (decode + x264rgb qp0)", codec, None)]
    rows += [(name, fps, rss) for name, fps, _, rss in runs]
    if isinstance(deface, float):
        rows.append(("deface 1.5.0 (CenterFace CPU)", deface, None))
    for name, fps, rss in rows:
        vs_deface = f"{fps / deface:>9.2f}x" if isinstance(deface, float) else "       n/a"
        memory = f"{rss:>9.0f}" if rss is not None else f"{'':>9}"
        print(f"{name:<46} {fps:>9.1f} {fps / codec:>8.0%} {vs_deface} {memory}")
    if not isinstance(deface, float):
        print(f"deface: {deface}")
    print("uunet-edge per-stage mean latency (ms):")
    stages = ("detect", "track", "deidentify", "ue_per_face", "seal", "encode:evidence")
    print(f"  {'':<16}" + "".join(f"{name.split(',')[-1].strip()[:14]:>16}" for name, *_ in runs))
    for stage in stages:
        values = [stats["mean_latency_ms"].get(stage) for _, _, stats, _ in runs]
        if any(v is not None for v in values):
            cells = "".join(f"{v:>16.2f}" if v is not None else f"{'':>16}" for v in values)
            print(f"  {stage:<16}{cells}")
    for name, _, stats, _ in runs:
        counters = stats["counters"]
        faces = counters.get("faces_deidentified", 0)
        processed = counters.get("frames_processed", 0)
        dropped = stats["labelled"].get("frames_dropped", {})
        print(f"  {name}: {faces:.0f} faces de-identified in {processed:.0f} frames", end="")
        print(f", dropped {dropped}" if dropped else "")


def _model_settings(args: argparse.Namespace) -> dict[str, object]:
    """The ``model`` keys the command line sets (none: the agent's defaults, ``auto``)."""
    settings: dict[str, object] = {}
    if args.providers != "auto":
        settings["providers"] = args.providers.split(",")
    gpu: dict[str, object] = {}
    if args.fp16:
        gpu["fp16"] = True
    if args.trt_cache is not None:
        gpu["trt_engine_cache_dir"] = str(args.trt_cache)
    if gpu:
        settings["gpu"] = gpu
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    media = REPO.parent / "shared" / "media"
    parser.add_argument("--clip", type=Path, default=media / "videos" / "hamilton_640x360.mp4")
    parser.add_argument("--size", default="1920x1080,640x360,640x480")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "weights" / "default")
    parser.add_argument("--detector", default="yunet")
    parser.add_argument("--providers", default="auto", help="auto, or e.g. tensorrt,cuda,cpu")
    parser.add_argument(
        "--detector-providers",
        default="cpu",
        help="where YuNet runs on ONNX Runtime: cpu (the default), auto, or e.g. cuda,cpu",
    )
    parser.add_argument("--fp16", action="store_true", help="TensorRT half-precision engine")
    parser.add_argument("--trt-cache", type=Path, default=None, help="TensorRT engine cache")
    parser.add_argument("--quick", action="store_true", help="default agent only, no deface")
    parser.add_argument(
        "--variants",
        default="default,no-low-light,full-size,x264rgb",
        help=f"agent variants, comma-separated, among {', '.join(EDGE_VARIANTS)}",
    )
    parser.add_argument("--no-deface", action="store_true", help="skip deface")
    args = parser.parse_args()
    print(f"model: {args.model}; detector: {args.detector}; cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.size.split(","):
            width, height = (int(v) for v in size.lower().split("x"))
            bench_size(args, width, height, Path(tmp))


if __name__ == "__main__":
    main()
