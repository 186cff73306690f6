"""What sealing the original faces costs the edge, side by side in one run, per frame size.

    python bench/sealing.py [--clip ../shared/media/videos/michaelfarayola7_faces.mp4]
                            [--sizes 640x480,1920x1080] [--frames 40]
                            [--model models/weights/default]

For each size the clip is resized and written once as H.264 (``bench/edge.py``'s camera clip),
then the real agent (``edge_agent.app``) runs it four times, each with an FFV1 evidence file and
a lossy H.264 file (CRF 23): without sealed faces, then sealed (PNG in the LSB message) with the
lossy SEI carrying no faces, JPEG (4:4:4, quality 95) faces, or PNG faces. Printed per run:
frames/s, ``seal_faces`` ms per frame that has faces (compress + encrypt), the ``seal`` stage
(message + HMAC + LSB), payload bytes per sealed face, faces left ``Ud``-only, the lossy file's
bitrate and its ratio to the run without sealing.

Then the evidence of the sealed runs is read back and opened with the private key
(:func:`shared.sealed_faces.open_sealed_faces`): every face is compared with the camera frame's
pixels at its box (``exact``: all equal), and the lossy file's SEI faces give their worst PSNR.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.edge import _make_camera_clip
from edge_agent.app import build_agent
from edge_agent.cli import load_edge_settings
from edge_agent.credentials import CAMERA_KEY_ENV
from shared import stego
from shared.roi_message import RoiMessage, parse_message
from shared.sealed_faces import SealContext, open_sealed_faces
from shared.sealing_keys import SealingPrivateKey, generate_key_pair, load_private_key
from shared.sei import parse_sei_payload
from shared.video_io import probe, read_frames

REPO = Path(__file__).resolve().parents[1]
CAMERA_KEY = b"bench-sealing-camera-key-7f3a9c1e5b"
RUNS = (
    ("no sealed faces", None),
    ("sealed, SEI off", "off"),
    ("sealed, SEI jpeg q95", "jpeg"),
    ("sealed, SEI png", "png"),
)


def run_agent(
    clip: Path, model: Path, out: Path, public_key: Path | None, sei: str | None
) -> tuple[float, dict, Path, Path]:
    """One run of the real agent; returns (frames/s, stats, evidence path, lossy path)."""
    os.environ[CAMERA_KEY_ENV] = CAMERA_KEY.decode()
    evidence, lossy = out / "evidence.mkv", out / "lossy.mp4"
    overrides: dict[str, object] = {
        "source": {"url": str(clip), "queue_size": 8},
        "model": {"dir": str(model)},
        "privacy": {"allow_public_decoder": True},
        "outputs": {
            "evidence": {"path": str(evidence), "segment_s": None, "queue_size": 256},
            "lossy": {"target": str(lossy), "queue_size": 64},
        },
        "metrics": {"enabled": False},
    }
    if public_key is not None:
        overrides["sealed_faces"] = {"recipients": [str(public_key)], "sei": sei}
    agent = build_agent(load_edge_settings(None, overrides))
    start = time.perf_counter()
    result = agent.run()
    return result.frames_processed / (time.perf_counter() - start), result.stats, evidence, lossy


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _opened_pairs(
    messages: Iterable[RoiMessage],
    keys: dict[str, SealingPrivateKey],
    sources: list[np.ndarray],
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(opened face, the camera frame's pixels at its box) for every sealed face of messages."""
    for message in messages:
        if message.sealed is None:
            continue
        context = SealContext.of(message)
        opened = open_sealed_faces(message.sealed, message.boxes, context, keys, CAMERA_KEY)
        for index, face in opened.faces.items():
            box = message.boxes[index]
            yield face, sources[message.frame_index][box.y : box.bottom, box.x : box.right]


def check_faces(clip: Path, evidence: Path, lossy: Path, key_path: Path) -> tuple[str, str]:
    """Open the sealed faces of both files against the camera frames: (exact, lossy PSNR)."""
    key = load_private_key(key_path)
    keys = {key.key_id: key}
    sources = [f.rgb for f in read_frames(clip)]
    lossless = (parse_message(stego.extract(f.rgb)) for f in read_frames(evidence))
    pairs = _opened_pairs(lossless, keys, sources)
    exact = [np.array_equal(face, source) for face, source in pairs]
    sei = (parse_message(parse_sei_payload(p)) for f in read_frames(lossy) for p in f.sei)
    psnrs = [_psnr(face, source) for face, source in _opened_pairs(sei, keys, sources)]
    lossy_text = f"{min(psnrs):.1f} dB worst of {len(psnrs)}" if psnrs else "no faces"
    return f"{sum(exact)}/{len(exact)}", lossy_text


def bench_size(clip_source: Path, size: tuple[int, int], frames: int, model: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        clip = tmpdir / "camera.mp4"
        count = _make_camera_clip(clip_source, size, frames, clip)
        key_path, public_path = generate_key_pair(tmpdir / "keys")
        print(f"\n{size[0]}x{size[1]}: {clip_source.name}, {count} frames")
        header = (
            f"{'run':<22} {'fps':>6} {'seal_faces':>10} {'seal':>6} {'B/face':>7} "
            f"{'sealed':>7} {'Ud-only':>7} {'lossy':>11} {'x':>5}  {'exact':>9}  lossy faces"
        )
        print(header)
        base_bitrate = None
        for name, sei in RUNS:
            out = tmpdir / (sei or "plain")
            out.mkdir(mode=0o750)
            fps, stats, evidence, lossy = run_agent(
                clip, model, out, public_path if sei else None, sei
            )
            counters, latency = stats["counters"], stats["mean_latency_ms"]
            sealed = counters.get("faces_sealed", 0)
            unsealed = sum(stats["labelled"].get("faces_unsealed", {}).values())
            per_face = counters.get("sealed_bytes", 0) / sealed if sealed else 0
            bitrate = lossy.stat().st_size * 8 / (count / probe(clip).fps) / 1e6
            base_bitrate = base_bitrate or bitrate
            exact, lossy_faces = check_faces(clip, evidence, lossy, key_path) if sei else ("", "")
            print(
                f"{name:<22} {fps:>6.2f} {latency.get('seal_faces', 0):>8.2f}ms "
                f"{latency.get('seal', 0):>5.2f} {per_face:>7.0f} {sealed:>7.0f} "
                f"{unsealed:>7.0f} {bitrate:>6.2f}Mb/s {bitrate / base_bitrate:>5.2f}  "
                f"{exact:>9}  {lossy_faces}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    media = REPO.parent / "shared" / "media" / "videos"
    parser.add_argument("--clip", type=Path, default=media / "michaelfarayola7_faces.mp4")
    parser.add_argument("--sizes", default="640x480,1920x1080")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "weights" / "default")
    args = parser.parse_args()
    print(f"model: {args.model}; cpus: {os.cpu_count()}")
    for text in args.sizes.split(","):
        width, height = (int(v) for v in text.lower().split("x"))
        bench_size(args.clip, (width, height), args.frames, args.model)


if __name__ == "__main__":
    main()
