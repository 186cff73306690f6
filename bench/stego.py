"""Benchmark: shared.stego (numpy) vs the stegano package, side by side in one run.

Usage: python bench/stego.py [--repeat N]

For 640x480 and 1920x1080 frames and a short (a v1 ROI message with 6 faces) and a long
(8 KiB) message, prints the median time of each implementation and the speed-up.
Both sides start from and end with a numpy RGB frame, as the pipeline has it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from stegano import lsb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared import stego
from shared.geometry import Box
from shared.roi_message import format_v1


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    header = ("frame", "message", "op", "stegano ms", "numpy ms", "speed-up")
    print("{:>10} {:>8} {:>8} {:>11} {:>9} {:>9}".format(*header))
    for height, width in ((480, 640), (1080, 1920)):
        frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        boxes = [Box(40 * i, 30, 36, 36) for i in range(6)]
        short = format_v1(
            boxes,
            camera_id="cam-01",
            model_id="0123456789abcdef",
            frame_index=123456,
            key=b"k" * 32,
            frame=frame,
        )
        long = "x" * 8192
        for label, message in (("short", short), ("8KiB", long)):
            hidden = stego.embed(frame, message)
            assert lsb.reveal(Image.fromarray(hidden)) == message
            cases = {
                "embed": (
                    lambda m=message, f=frame: np.asarray(lsb.hide(Image.fromarray(f), m)),
                    lambda m=message, f=frame: stego.embed(f, m),
                ),
                "extract": (
                    lambda h=hidden: lsb.reveal(Image.fromarray(h)),
                    lambda h=hidden: stego.extract(h),
                ),
            }
            for op, (reference, ours) in cases.items():
                t_ref = _median_seconds(reference, args.repeat)
                t_ours = _median_seconds(ours, args.repeat)
                print(
                    f"{width}x{height:<5} {label:>8} {op:>8} {t_ref * 1e3:11.3f} "
                    f"{t_ours * 1e3:9.3f} {t_ref / t_ours:8.1f}x"
                )


if __name__ == "__main__":
    main()
