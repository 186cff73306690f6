"""The paste/crop of a surrogate, side by side in one run: round 1's hard pixel-replicated
paste vs the smooth feathered one (``shared.compositing``), at the ROI sizes of surveillance.

    python bench/compositing.py [--repeats 200]

Per ROI side (32 to 320 px): the edge's paste of a 64 x 64 model output into a 1080p frame and
the authority's crop back to 64 x 64, each composition interleaved with the other (so both see
the same machine load); prints the median microseconds per face and the ratio. The model
itself (``Ue``, about 5 ms per face on 2 cores) is not part of it: what changed between the two
is only how its output enters the frame.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.compositing import LEGACY, Composition
from shared.geometry import Box


def _time(call: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    batch = rng.random((1, 3, 64, 64), dtype=np.float32)
    smooth = Composition("smooth", 0.08, (64,))
    print(
        f"{'ROI side':>8}  {'paste round 1':>13}  {'paste smooth':>12}  {'ratio':>5}"
        f"  {'crop round 1':>12}  {'crop smooth':>11}  {'ratio':>5}"
    )
    for side in (32, 64, 96, 160, 240, 320):
        box = Box(400, 300, side, side)
        times = {}
        for _ in range(3):  # interleave the two compositions
            for name, comp in (("legacy", LEGACY), ("smooth", smooth)):
                paste = _time(lambda c=comp, b=box: c.paste(frame, batch, [b]), args.repeats // 3)
                crop = _time(lambda c=comp, b=box: c.crops(frame, [b], 64), args.repeats // 3)
                times.setdefault(name, []).append((paste, crop))
        (lp, lc), (sp, sc) = (
            tuple(min(v[i] for v in times[n]) for i in (0, 1)) for n in ("legacy", "smooth")
        )
        print(
            f"{side:>8}  {lp:>11.0f}us  {sp:>10.0f}us  {sp / lp:>5.2f}"
            f"  {lc:>10.0f}us  {sc:>9.0f}us  {sc / lc:>5.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
