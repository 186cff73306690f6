"""Compare the face detector plug-ins on real media: recall, false positives, speed.

    python bench/detectors.py [--detectors yunet,centerface,mtcnn] [--frames 60]
    python bench/detectors.py --working-size [--frames 40] [--size 1920x1080]
    python bench/detectors.py --covered [--frames 45] [--size 1920x1080] [--set key=value]

* Recall on the dlib example photos with ground-truth boxes (``images/dlib_faces``,
  ``training.xml`` + ``testing.xml``, boxes marked ``ignore`` skipped): a face counts as found
  when a detection overlaps it with IoU >= 0.3 (box conventions differ between detectors), and
  as *covered* when the head ROI the edge derives from the detection (margin 0.25) contains at
  least 90% of it (what matters for privacy). Unmatched detections count as false positives.
* Faces found on the group photos whose face count is known.
* Milliseconds per frame (median) on the first ``--frames`` frames of
  ``videos/hamilton_640x360.mp4``, at its size and resized to 640x480 and 1280x720.

``--working-size``: the edge's detection path (``edge_agent.config.DetectorSettings``
defaults: a shrunk pass plus full-resolution regions, the low-light pass on dark images only)
against the same detector at full size with the low-light pass on every frame, on clips of
``videos/`` resized to ``--size`` (every ``--step``-th frame, default 3, so faces move): recall
is the share of the full-size detector's boxes matched (IoU >= 0.5) by a box of the edge path,
with the median milliseconds per frame of both and of the full-size path with the luma gate
(what the edge runs on small frames), the three taking turns on each frame.

``--covered``: recall through the agent (the edge's own frame path and look-ahead): the share
of the full-size detector's faces the agent covered in each frame (``bench/covered_recall.py``
says how it counts); ``--reference-cache FILE`` keeps the reference boxes between runs.

Detectors whose package is missing are reported as such (MTCNN lives in its own venv, see
``edge_agent/README.md``). Media come from ``../shared/media`` (``--media`` to change).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.detectors import (
    DetectorOptions,
    DetectorUnavailableError,
    FaceDetector,
    create_detector,
)
from shared.geometry import Box, expand_to_head, iou
from shared.video_io import read_frames

GROUPS = {"friends_multiface.jpg": 7, "insightface_t1.jpg": 6}


def _rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _ground_truth(folder: Path) -> list[tuple[Path, list[Box]]]:
    items = []
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(folder / name).getroot().iter("image"):
            boxes = [
                Box(
                    max(0, int(b.get("left"))),
                    max(0, int(b.get("top"))),
                    int(b.get("width")),
                    int(b.get("height")),
                )
                for b in image.iter("box")
                if b.get("ignore") != "1"
            ]
            items.append((folder / image.get("file"), boxes))
    return items


def _covered(face: Box, roi: Box) -> float:
    ix = max(0, min(face.right, roi.right) - max(face.x, roi.x))
    iy = max(0, min(face.bottom, roi.bottom) - max(face.y, roi.y))
    return ix * iy / face.area


def _recall(
    detector: FaceDetector, items: list[tuple[Path, list[Box]]]
) -> tuple[int, int, int, int]:
    found = covered = false_pos = total = 0
    for path, truth in items:
        frame = _rgb(path)
        h, w = frame.shape[:2]
        dets = [d.box for d in detector.detect(frame)]
        used = set()
        for face in truth:
            face = Box(face.x, face.y, min(face.w, w - face.x), min(face.h, h - face.y))
            total += 1
            scores = [iou(face, d) for d in dets]
            best = int(np.argmax(scores)) if scores else -1
            if best >= 0 and scores[best] >= 0.3:
                found += 1
                used.add(best)
            if any(_covered(face, expand_to_head(d, w, h, 0.25)) >= 0.9 for d in dets):
                covered += 1
        false_pos += len(dets) - len(used)
    return found, covered, false_pos, total


def _speed(detector: FaceDetector, frames: list[np.ndarray]) -> float:
    detector.detect(frames[0])
    times = []
    for frame in frames:
        start = time.perf_counter()
        detector.detect(frame)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


WORKING_SIZE_CLIPS = (
    "hamilton_640x360.mp4",
    "mrsingh63_crowd.mp4",
    "pawarsuraj_pedestrians.mp4",
    "MOT20-05_826x540.mp4",
)


def _clip_frames(path: Path, size: tuple[int, int], count: int, step: int = 3) -> list[np.ndarray]:
    frames = []
    for index, frame in enumerate(read_frames(path)):
        if index % step == 0:
            frames.append(cv2.resize(frame.rgb, size, interpolation=cv2.INTER_CUBIC))
        if len(frames) >= count:
            break
    return frames


def _timed_detect(detectors: list[FaceDetector], frames: list[np.ndarray]) -> list[tuple]:
    """Each detector's boxes per frame and median ms, the detectors taking turns on each
    frame (so a machine whose load changes slows all of them alike)."""
    found: list[list] = [[] for _ in detectors]
    times: list[list[float]] = [[] for _ in detectors]
    for frame in frames:
        for boxes, spent, detector in zip(found, times, detectors, strict=True):
            start = time.perf_counter()
            boxes.append([d.box for d in detector.detect(frame)])
            spent.append(time.perf_counter() - start)
    return [(b, statistics.median(t) * 1000.0) for b, t in zip(found, times, strict=True)]


def working_size(
    media: Path, size: tuple[int, int], count: int, overrides: dict, step: int = 3
) -> None:
    """Print recall and speed of the edge's detection path against the full-size detector,
    with the speed of the full-size path the edge takes for small frames (the luma gate)."""
    from edge_agent.config import DetectorSettings

    settings = DetectorSettings(**overrides)
    edge_options = settings.detector_options()
    full = dataclasses.replace(edge_options, max_input_side=None)
    reference = create_detector(
        settings.kind, dataclasses.replace(full, low_light_max_luma=None, full_res_regions=False)
    )
    print(f"{size[0]}x{size[1]}, {count} frames per clip (every {step}); edge path: {edge_options}")
    print(
        f"{'clip':<28} {'ref boxes':>9} {'matched':>8} {'recall':>7} {'ms ref':>7} "
        f"{'ms full':>8} {'ms edge':>8}"
    )
    total = matched_total = 0
    for name in WORKING_SIZE_CLIPS:
        frames = _clip_frames(media / "videos" / name, size, count, step)
        edge = create_detector(settings.kind, edge_options)  # fresh state per clip
        (want, ms_ref), (_, ms_full), (got, ms_edge) = _timed_detect(
            [reference, create_detector(settings.kind, full), edge], frames
        )
        boxes = sum(len(w) for w in want)
        matched = sum(
            1
            for w, g in zip(want, got, strict=True)
            for box in w
            if any(iou(box, b) >= 0.5 for b in g)
        )
        total, matched_total = total + boxes, matched_total + matched
        recall = matched / boxes if boxes else 1.0
        print(
            f"{name:<28} {boxes:>9} {matched:>8} {recall:>7.1%} {ms_ref:>7.0f} {ms_full:>8.0f} "
            f"{ms_edge:>8.0f}"
        )
    print(f"{'all':<28} {total:>9} {matched_total:>8} {matched_total / max(1, total):>7.1%}")


def through_agent(
    media: Path, size: tuple[int, int], count: int, overrides: dict, model: Path, cache: Path | None
) -> None:
    """Print, per clip, the share of the full-size detector's faces the agent covered (every
    frame, consecutive; bench/covered_recall.py), and the agent's detection cost: mean ms, and
    the detector backend's calls and megapixels per frame."""
    from bench.covered_recall import (
        Counts,
        agent_cover,
        confirmed_faces,
        count_covered,
        reference_faces,
    )
    from edge_agent.cli import load_edge_settings

    settings = load_edge_settings(
        None,
        {
            "model": {"dir": str(model)},
            "metrics": {"enabled": False},
            "privacy": {"allow_public_decoder": True},  # a measurement, not a deployment
            **{k: v for k, v in overrides.items() if isinstance(v, dict)},
            "detector": {k: v for k, v in overrides.items() if not isinstance(v, dict)},
        },
    )
    look = settings.margins.lookahead_frames
    print(
        f"{size[0]}x{size[1]}, {count} consecutive frames per clip; detector {overrides or '-'}; "
        f"look-ahead {look} frames ({look / 30 * 1000:.0f} ms at 30 fps)"
    )
    print(
        f"{'clip':<28} {'ref faces':>9} {'covered':>8} {'strict':>7} {'centre':>7} {'ms ref':>7} "
        f"{'ms detect':>9} {'calls':>5} {'Mpx':>5} {'back-filled':>11} {'held':>5} "
        f"{'confirmed':>9} {'covered':>8}"
    )
    total, total_confirmed = Counts(), Counts()
    for name in WORKING_SIZE_CLIPS:
        frames = _clip_frames(media / "videos" / name, size, count, step=1)
        key = f"{name}|{size[0]}x{size[1]}|{count}|{settings.detector.kind}"
        key += f"|{settings.detector.score_threshold}|{settings.detector.low_light_gamma}"
        truth, ms_ref = reference_faces(frames, settings, cache, key)
        result = agent_cover(frames, settings)
        counts = count_covered(truth, result.boxes)
        total += counts
        confirmed = confirmed_faces(frames, truth, cache, f"{key}|confirm")
        sure = count_covered(confirmed, result.boxes) if confirmed is not None else Counts()
        total_confirmed += sure
        stats = result.stats
        detect_ms = stats["mean_latency_ms"].get("detect", 0.0)
        dropped = len(frames) - len(result.boxes)
        print(
            f"{name:<28} {counts.row()} {'cached' if ms_ref is None else f'{ms_ref:.0f}':>7} "
            f"{detect_ms:>9.0f} {result.calls / len(frames):>5.1f} "
            f"{result.pixels / len(frames) / 1e6:>5.2f} "
            f"{stats['counters'].get('faces_backfilled', 0):>11.0f} "
            f"{stats['counters'].get('faces_held', 0):>5.0f} {sure.faces:>9} "
            f"{sure.covered / max(1, sure.faces):>8.1%}"
            + (f" dropped {dropped}" if dropped else "")
        )
    sure = total_confirmed
    print(
        f"{'all':<28} {total.row()} {'':>7} {'':>9} {'':>5} {'':>5} {'':>11} {'':>5} "
        f"{sure.faces:>9} "
        f"{sure.covered / max(1, sure.faces):>8.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detectors", default="yunet,centerface,mtcnn")
    parser.add_argument("--working-size", action="store_true")
    parser.add_argument("--covered", action="store_true", help="recall through the agent")
    repo = Path(__file__).resolve().parents[1]
    parser.add_argument("--model", type=Path, default=repo / "models" / "weights" / "default")
    parser.add_argument("--reference-cache", type=Path, default=None)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        help="detector setting override, key=value (JSON); --covered: a JSON object value "
        "replaces that settings section (margins={...})",
    )
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--step", type=int, default=3, help="--working-size: every n-th frame")
    parser.add_argument("--threshold", type=float, default=0.6)
    default_media = Path(__file__).resolve().parents[1].parent / "shared" / "media"
    parser.add_argument("--media", type=Path, default=default_media)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    if args.covered:
        through_agent(args.media, size, args.frames, overrides, args.model, args.reference_cache)
        return
    if args.working_size:
        working_size(args.media, size, args.frames, overrides, args.step)
        return
    items = _ground_truth(args.media / "images" / "dlib_faces")
    clip = [f.rgb for f in read_frames(args.media / "videos" / "hamilton_640x360.mp4")]
    clip = clip[: args.frames]
    sizes = {
        "640x360": clip,
        "640x480": [cv2.resize(f, (640, 480)) for f in clip],
        "1280x720": [cv2.resize(f, (1280, 720)) for f in clip],
    }
    print(f"threshold {args.threshold}; {sum(len(b) for _, b in items)} ground-truth faces")
    header = f"{'detector':<11} {'recall':>8} {'covered':>8} {'false+':>6} "
    header += " ".join(f"{g[:9]:>9}" for g in GROUPS)
    header += " " + " ".join(f"{'ms@' + s:>11}" for s in sizes)
    print(header)
    for key in args.detectors.split(","):
        try:
            detector = create_detector(key, DetectorOptions(score_threshold=args.threshold))
        except DetectorUnavailableError as exc:
            print(f"{key:<11} unavailable: {exc}")
            continue
        found, covered, false_pos, total = _recall(detector, items)
        groups = [
            f"{len(detector.detect(_rgb(args.media / 'images' / g)))}/{n}"
            for g, n in GROUPS.items()
        ]
        speeds = [_speed(detector, frames) for frames in sizes.values()]
        print(
            f"{key:<11} {found / total:>8.1%} {covered / total:>8.1%} {false_pos:>6} "
            + " ".join(f"{g:>9}" for g in groups)
            + " "
            + " ".join(f"{s:>11.1f}" for s in speeds)
        )


if __name__ == "__main__":
    main()
