"""Several cameras in one edge process: each camera's frame rate and share, side by side in one
run with one camera alone.

    python bench/multi_camera.py [--clip ../shared/media/videos/hamilton_640x360.mp4]
                                 [--cameras 1,4] [--seconds 20] [--model models/weights/default]
                                 [--detector-options '{"engine": "opencv"}']

Every camera plays the same clip (looped by FFmpeg without re-encoding) at its own frame rate
(``source.realtime``: frames come at the clip's rate and, as from a live camera, old frames
are dropped when the agent falls behind), through ``edge_agent.multi_camera`` (one ``Ue``
session, one detector per camera, FFV1 evidence per camera). For each camera count it prints,
per camera, the frames emitted per second, the share of the offered rate, and the fairness
(the slowest camera's rate over the fastest's), plus the process's total. Each count runs in a
fresh process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.cli import load_edge_settings
from edge_agent.credentials import camera_key_env
from edge_agent.multi_camera import build_multi_camera_agent
from shared.video_io import probe

REPO = Path(__file__).resolve().parents[1]


def run_cameras(
    clip: Path,
    model: Path,
    count: int,
    seconds: float,
    out: Path,
    detector_options: dict | None = None,
) -> dict:
    """Run ``count`` cameras on ``clip`` for ``seconds``; frames emitted per camera.
    ``detector_options``: the detector plug-in's ``options`` (every camera's)."""
    cameras = {}
    for index in range(count):
        camera_id = f"cam-{index}"
        os.environ[camera_key_env(camera_id)] = f"bench-key-{camera_id}-0123456789abcdef"
        cameras[camera_id] = {
            "source": {"url": str(clip), "realtime": True},
            "outputs": {"evidence": {"path": str(out / f"{camera_id}.mkv")}},
        }
    settings = load_edge_settings(
        None,
        {
            "model": {"dir": str(model)},
            "privacy": {"allow_public_decoder": True},  # the demo model: fine for its cost
            "metrics": {"enabled": False},
            "detector": {"options": detector_options or {}},
            "cameras": cameras,
        },
    )
    agent = build_multi_camera_agent(settings)
    runner = threading.Thread(target=agent.run)
    runner.start()
    time.sleep(2.0)  # start-up: sources open, first frames
    start = {c.camera_id: c.stats.get("frames_emitted") for c in agent.cameras}
    began = time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - began
    end = {c.camera_id: c.stats.get("frames_emitted") for c in agent.cameras}
    agent.stop("bench over")
    runner.join()
    return {camera_id: (end[camera_id] - start[camera_id]) / elapsed for camera_id in end}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clip", type=Path, default=REPO.parent / "shared/media/videos/hamilton_640x360.mp4"
    )
    parser.add_argument("--cameras", default="1,4", help="camera counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--model", type=Path, default=REPO / "models/weights/default")
    parser.add_argument(
        "--detector-options", type=json.loads, default={}, help="detector.options, as JSON"
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.cameras.split(",")]
    info = probe(args.clip)
    offered = float(info.fps)
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        looped = Path(tmp) / "looped.mp4"
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-stream_loop", "20", "-i",
             str(args.clip), "-c", "copy", "-an", str(looped)],
            check=True,
        )  # fmt: skip
        print(f"clip {args.clip.name}: {info.width}x{info.height} at {offered:.2f} frames/s")
        print(f"{'cameras':>7} | {'camera':>6} | {'frames/s':>8} | {'of offered':>10}")
        for count in counts:
            out = Path(tmp) / f"run{count}"
            out.mkdir(mode=0o750)
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                rates = pool.submit(
                    run_cameras,
                    looped,
                    args.model,
                    count,
                    args.seconds,
                    out,
                    args.detector_options,
                ).result()
            for camera_id, rate in rates.items():
                print(f"{count:>7} | {camera_id:>6} | {rate:>8.2f} | {rate / offered:>10.0%}")
            values = list(rates.values())
            fairness = min(values) / max(values) if max(values) > 0 else 0.0
            print(
                f"{count:>7} | {'total':>6} | {sum(values):>8.2f} | "
                f"fairness (slowest / fastest) {fairness:.2f}"
            )


if __name__ == "__main__":
    main()
