"""Frames with an uncovered face, before and after the edge's safety margins, by an oracle that
is not the pipeline's detector.

    nice python bench/leaks.py [--frames 120] [--model models/weights/default]
                               [--clip ../shared/media/videos/hamilton_640x360.mp4]

Both runs go through the edge's own path (``edge_agent.app.build_processor`` and
``build_lookahead``, never a copy): ``before`` with every margin off (no look-ahead, no low
tier, held boxes standing still), ``after`` with the shipped defaults (``margins.*``,
``tracker.hold_velocity``). A face is *uncovered* in a frame when more than half of its
box's pixels leave the edge unchanged (each channel within 2 levels: the LSB message changes
them by 1). The oracles:

* the sample clip (``edge_agent/samples``): its generator's ground-truth face boxes
  (``make_sample.face_boxes``);
* the real clip: CenterFace (``centerface`` plug-in, another detector family than YuNet) at
  score 0.5 on the original frame.

Prints, per clip and run, the frames with an uncovered face, and the look-ahead's latency; the
defaults are also run with the detector on every 2nd and 3rd frame (``margins.detect_every``).
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.app import build_lookahead, build_processor
from edge_agent.cli import load_edge_settings
from edge_agent.samples.make_sample import SAMPLE, face_boxes
from edge_agent.sources import CapturedFrame
from shared.detectors import DetectorOptions, create_detector
from shared.geometry import Box
from shared.video_io import read_frames

HAMILTON = Path(__file__).resolve().parents[2] / "shared/media/videos/hamilton_640x360.mp4"
KEY = b"bench-leaks-camera-key-0123456789"
TOLERANCE = 2

#: ``margins.detect_every`` values measured after the defaults (the detector on every Nth frame).
STRIDES = (2, 3)
BEFORE = {
    "margins": {"lookahead_frames": 0, "low_score_threshold": None},
    "tracker": {"hold_velocity": False},
}


def uncovered(source: np.ndarray, public: np.ndarray, box: Box) -> bool:
    """More than half of ``box``'s pixels unchanged (within ``TOLERANCE`` on every channel)."""
    a = source[box.y : box.bottom, box.x : box.right].astype(np.int16)
    b = public[box.y : box.bottom, box.x : box.right].astype(np.int16)
    same = np.all(np.abs(a - b) <= TOLERANCE, axis=-1)
    return bool(same.size) and float(same.mean()) > 0.5


def run(frames: list[np.ndarray], truth: list[list[Box]], overrides: dict, model: Path) -> int:
    """Frames of ``frames`` with a ``truth`` face uncovered after the edge's path."""
    settings = load_edge_settings(
        None,
        {
            "model": {"dir": str(model)},
            "metrics": {"enabled": False},
            "privacy": {"allow_public_decoder": True},  # a measurement, not a deployment
            **overrides,
        },
    )
    processor = build_processor(settings, key=KEY, noise_secret=b"bench-leaks")
    lookahead = build_lookahead(settings, processor)
    public: dict[int, np.ndarray] = {}
    for index, rgb in enumerate(frames):
        for sealed in lookahead.push(CapturedFrame(index, rgb.copy(), 0.0)):
            public[sealed.index] = sealed.rgb
    for sealed in lookahead.flush():
        public[sealed.index] = sealed.rgb
    assert len(public) == len(frames), "a frame was lost"
    return sum(
        any(uncovered(frames[i], public[i], box) for box in truth[i]) for i in range(len(frames))
    )


def _fps(path: Path) -> Fraction:
    with av.open(str(path)) as container:
        return Fraction(container.streams.video[0].average_rate or 25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--model", type=Path, default=Path("models/weights/default"))
    parser.add_argument("--clip", type=Path, default=HAMILTON)
    args = parser.parse_args()
    oracle = create_detector("centerface", DetectorOptions(score_threshold=0.5))
    clips = []
    sample = [f.rgb for f in read_frames(SAMPLE)][: args.frames]
    sample_truth = [[Box(*b) for b in face_boxes(i)] for i in range(len(sample))]
    clips.append(("sample (ground truth)", SAMPLE, sample, sample_truth))
    real = []
    for frame in read_frames(args.clip):
        real.append(frame.rgb)
        if len(real) == args.frames:
            break
    real_truth = [[d.box for d in oracle.detect(f)] for f in real]
    clips.append((f"{args.clip.name} (CenterFace)", args.clip, real, real_truth))
    after = load_edge_settings(None, {"metrics": {"enabled": False}}).margins.lookahead_frames
    for name, path, frames, truth in clips:
        before_n = run(frames, truth, BEFORE, args.model)
        after_n = run(frames, truth, {}, args.model)
        strided = {
            n: run(frames, truth, {"margins": {"detect_every": n}}, args.model) for n in STRIDES
        }
        latency = after / float(_fps(path))
        print(
            f"{name}: {len(frames)} frames, {sum(map(bool, truth))} with a face; "
            f"uncovered before {before_n}, after {after_n}, "
            + ", ".join(f"after with detect_every {n} {k}" for n, k in strided.items())
            + f" (look-ahead {after} frames = {latency * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    main()
