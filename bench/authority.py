"""Benchmark: how fast the authority reverses a 640x480 clip, and Ud's cost per face.

Usage: python bench/authority.py [--model DIR] [--frames N] [--faces K] [--threads T]
       python bench/authority.py --workers 1,2 [--queue local|celery] [--segment-frames F] ...

Side by side in one run, on a 640x480 lossless (FFV1) evidence clip made from the real clip
``../shared/media/videos/hamilton_640x360.mp4`` (letterboxed to 640x480, K head boxes per frame,
de-identified and sealed as the edge does):

The evidence clip is made with the edge's own :class:`edge_agent.deid.Deidentifier` (the
model's composition, one noise plane per box) and sealed as the edge seals it; the boxes are
fixed (no detector), so the stand-in, which has no measured card, can be used too.

* **codec only**: decode the evidence and re-encode it losslessly, nothing else, one thread;
* **reconstruction**: what a job does (``Reconstructor.reconstruct_clip``: decode, read and
  verify every message, Ud batched across frames, paste, encode, with decode and encode in
  their own threads); seconds, and the clip's duration divided by them (x real time; the goal
  is >= 2 on 2 cores);

both for the two result codecs (H.264 RGB qp 0 in MP4, the default, and FFV1 in Matroska);
* **Ud alone**: milliseconds per face at batch 1, 8 and 32 (median of repeats).

With ``--workers 1,2`` (worker process counts) it measures segment-parallel reversal instead
(:mod:`authority_service.parallel`, result codec H.264 RGB): the evidence clip (the real clip
looped to ``--frames``, e.g. 5400 for 3 minutes) reversed with each count (1: one pass, as a
job with ``jobs.segment_workers: 1``), the wall-clock ratio to the first, whether the reports
match, the per-segment cost (seconds per frame of each segment) and the time it predicts for N
workers: planning + worker start-up + the segments spread over N + joining (while N free cores
are there; ONNX Runtime uses ``--threads`` in every worker). With ``--queue celery`` the counts
are real ``uunet-authority worker`` processes taking the clip job's segment tasks through a
throwaway ``redis-server`` (``bench/authority_workers.py``: wall-clock seconds from submission to
the finished job, the ratio, whether the decoded frames match, the per-segment cost and the
seconds it predicts for N workers).

The model is ``--model DIR`` (an export: ue.onnx, ud.onnx, card.json; or an edge package whose
decoder is in ``models/weights/decoders``), else the shipped
``models/weights/default`` when present, else an UNTRAINED stand-in with the shape of the
default (a pix2pix U-Net with 32 base filters, 64x64, random weights) written with ``onnx``:
its speed is the real model's, its faces are noise. The output says which was used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from fractions import Fraction
from itertools import islice
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from authority_service.config import SHIPPED_DECODERS_DIR  # noqa: E402
from authority_service.decoders import DecoderRegistry  # noqa: E402
from authority_service.parallel import SegmentedReversal  # noqa: E402
from authority_service.reconstruction import LsbMessageSource, Reconstructor  # noqa: E402
from bench.authority_workers import bench_celery, spread  # noqa: E402
from edge_agent.deid import Deidentifier  # noqa: E402
from edge_agent.noise import NoiseBank  # noqa: E402
from shared.frame_seal import seal_frame  # noqa: E402
from shared.geometry import Box  # noqa: E402
from shared.model_dir import find_decoder_dir, load_card, load_encoder  # noqa: E402
from shared.video_io import LosslessWriter, VideoFrame, probe, read_frames  # noqa: E402

CLIP = REPO.parent / "shared" / "media" / "videos" / "hamilton_640x360.mp4"
SHIPPED = REPO / "models" / "weights" / "default"
CAMERA, KEY = "bench-cam", b"bench-camera-key-0123456789abcdef"
HEADS = [Box(484, 64, 128, 128), Box(30, 226, 56, 64), Box(40, 330, 96, 90), Box(300, 80, 72, 72)]


def _unet(role: str, in_channels: int, ngf: int = 32, size: int = 64) -> onnx.ModelProto:
    """A pix2pix-style U-Net (6 downsamplings for 64x64) with random weights."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def weight(name: str, shape: tuple[int, ...]) -> str:
        fan_in = int(np.prod(shape[1:]))
        inits.append(
            numpy_helper.from_array(
                (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), name
            )
        )
        return name

    channels = [ngf, ngf * 2, ngf * 4, ngf * 8, ngf * 8, ngf * 8]
    source, skips, previous = "x" if role == "ue" else "a", [], in_channels
    for i, out in enumerate(channels):
        w = weight(f"ew{i}", (out, previous, 4, 4))
        b = weight(f"eb{i}", (out,))
        nodes.append(
            helper.make_node("Conv", [source, w, b], [f"e{i}"], strides=[2, 2], pads=[1] * 4)
        )
        nodes.append(helper.make_node("LeakyRelu", [f"e{i}"], [f"el{i}"], alpha=0.2))
        skips.append((f"el{i}", out))
        source, previous = f"el{i}", out
    for i, out in enumerate([*reversed(channels[:-1]), 3]):
        w = weight(f"dw{i}", (previous, out, 4, 4))
        b = weight(f"db{i}", (out,))
        nodes.append(
            helper.make_node(
                "ConvTranspose", [source, w, b], [f"d{i}"], strides=[2, 2], pads=[1] * 4
            )
        )
        if out == 3:
            nodes.append(helper.make_node("Sigmoid", [f"d{i}"], ["a" if role == "ue" else "r"]))
            break
        skip, skip_channels = skips[-2 - i]
        nodes.append(helper.make_node("Relu", [f"d{i}"], [f"dr{i}"]))
        nodes.append(helper.make_node("Concat", [f"dr{i}", skip], [f"dc{i}"], axis=1))
        source, previous = f"dc{i}", out + skip_channels
    graph = helper.make_graph(
        nodes,
        f"standin_{role}",
        [
            helper.make_tensor_value_info(
                nodes[0].input[0], TensorProto.FLOAT, ["N", in_channels, size, size]
            )
        ],
        [
            helper.make_tensor_value_info(
                nodes[-1].output[0], TensorProto.FLOAT, ["N", 3, size, size]
            )
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in {"model_id": "untrainedngf32", "role": role, "input_size": str(size)}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model


def standin_model_dir(directory: Path) -> Path:
    """Write the untrained ngf32 stand-in (ue.onnx, ud.onnx, card.json) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(_unet("ue", 4), directory / "ue.onnx")
    onnx.save(_unet("ud", 3), directory / "ud.onnx")
    card = {
        "model_id": "untrainedngf32",
        "input_size": 64,
        "s": [-1, 1, 1, 0],
        "labels": ["id", "gender", "ethnicity", "hairstyle"],
        "description": "UNTRAINED ngf32 U-Net stand-in, for speed measurements only",
    }
    (directory / "card.json").write_text(json.dumps(card))
    return directory


def bench_model(model: Path | None, tmp: Path) -> tuple[Path, str]:
    """The model to measure and how to name it: ``model``, else the shipped default, else the
    UNTRAINED stand-in (written under ``tmp``)."""
    if model is not None:
        return model, f"{model}"
    if (SHIPPED / "card.json").is_file():
        return SHIPPED, f"shipped default {SHIPPED}"
    standin = standin_model_dir(tmp / "standin")
    return standin, "UNTRAINED ngf32 stand-in (no shipped default model yet)"


def decoders_folder(model_dir: Path, tmp: Path) -> Path:
    """``tmp/models``, holding ``model_dir``'s decoder under its model id (a ``models_dir``)."""
    card = load_card(model_dir)
    models = tmp / "models"
    models.mkdir(exist_ok=True)
    (models / card.model_id).symlink_to(
        find_decoder_dir(model_dir, [SHIPPED_DECODERS_DIR]).resolve()
    )
    return models


def _looped(path: Path) -> Iterator[VideoFrame]:
    """The frames of ``path`` again and again."""
    while True:
        yield from read_frames(path)


def make_evidence(model_dir: Path, out: Path, frames: int, faces: int) -> tuple[Path, float]:
    """A 640x480 FFV1 evidence clip of ``frames`` frames (the clip looped when it is shorter);
    returns it and its duration (s)."""
    encoder, card = load_encoder(model_dir, providers="cpu")
    deidentifier = Deidentifier(encoder, card, NoiseBank(b"bench-noise", card.input_size))
    fps = probe(CLIP).fps
    boxes = HEADS[:faces]
    with LosslessWriter(out, 640, 480, fps) as writer:
        for index, frame in enumerate(islice(_looped(CLIP), frames)):
            canvas = np.zeros((480, 640, 3), np.uint8)
            canvas[60:420] = frame.rgb
            public = canvas.copy()
            deidentifier.apply(public, boxes, list(range(len(boxes))))
            seal_frame(
                public,
                boxes,
                camera_id=CAMERA,
                model_id=card.model_id,
                frame_index=index,
                key=KEY,
                inplace=True,
            )
            writer.write(public)
        written = writer.frames_written
    return out, written / float(Fraction(fps))


def codec_only(source: Path, out: Path, codec: str) -> float:
    start = time.perf_counter()
    info = probe(source)
    with LosslessWriter(out, info.width, info.height, info.fps, codec=codec) as writer:
        for frame in read_frames(source):
            writer.write(frame.rgb)
    return time.perf_counter() - start


def ud_ms_per_face(reconstructor: Reconstructor, model_id: str, repeat: int) -> dict[int, float]:
    decoder = reconstructor.decoders.get(model_id)
    size = decoder.input_size
    rng = np.random.default_rng(1)
    result = {}
    for batch in (1, 8, 32):
        a = rng.random((batch, 3, size, size), np.float32)
        decoder.model(a)  # warm
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            decoder.model(a)
            times.append(time.perf_counter() - start)
        result[batch] = 1000 * statistics.median(times) / batch
    return result


def bench_workers(
    reconstructor: Reconstructor, evidence: Path, tmp: Path, counts: list[int], segment_frames: int
) -> None:
    """Reverse ``evidence`` with each worker count; print times, ratios and the prediction."""
    rows, reports, segmented = [], [], None
    for workers in counts:
        reversal = SegmentedReversal(reconstructor, workers=workers, segment_frames=segment_frames)
        start = time.perf_counter()
        report = reversal.run(evidence, tmp / f"out-{workers}.mp4", codec="libx264rgb")
        rows.append((workers, time.perf_counter() - start, reversal))
        reports.append({k: v for k, v in asdict(report).items() if k != "seconds"})
        if reversal.results:
            segmented = reversal
    duration = report.frames / report.fps
    base = rows[0][1]
    print(f"{'workers':>7} {'seconds':>8} {'x real time':>12} {'speed-up':>9} {'segments':>9}")
    for workers, seconds, reversal in rows:
        print(
            f"{workers:>7} {seconds:8.2f} {duration / seconds:12.2f} {base / seconds:9.2f} "
            f"{len(reversal.results) or 1:>9}"
        )
    print(
        f"same report for every count: {'yes' if all(r == reports[0] for r in reports) else 'NO'}"
    )
    if segmented is None:
        return
    per_frame = [r.seconds / r.report.frames for r in segmented.results]
    seconds = [r.seconds for r in segmented.results]
    print(
        f"per segment ({segmented.workers} workers, {len(per_frame)} segments of up to "
        f"{segment_frames} frames): {statistics.mean(per_frame) * 1000:.1f} ms/frame mean, "
        f"{min(per_frame) * 1000:.1f}-{max(per_frame) * 1000:.1f}; planning "
        f"{segmented.plan_s:.2f} s, worker start-up {segmented.startup_s:.2f} s, joining "
        f"{segmented.join_s:.2f} s"
    )
    fixed = segmented.plan_s + segmented.startup_s + segmented.join_s
    print(
        "predicted seconds for N workers (fixed + segments spread over N): "
        + ", ".join(f"{n}: {fixed + spread(seconds, n):.1f}" for n in (1, 2, 4, 8))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model directory (default: shipped/stand-in)")
    parser.add_argument("--frames", type=int, default=150, help="clip length in frames")
    parser.add_argument("--faces", type=int, default=3, choices=range(1, len(HEADS) + 1))
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    parser.add_argument("--repeat", type=int, default=20, help="Ud timing repeats")
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        help="compare segment worker process counts instead, e.g. 1,2",
    )
    parser.add_argument("--segment-frames", type=int, default=512, help="with --workers")
    parser.add_argument(
        "--queue",
        choices=("local", "celery"),
        default="local",
        help="with --workers: a local process pool (default), or that many real workers "
        "through a throwaway redis-server",
    )
    args = parser.parse_args()
    if not CLIP.is_file():
        sys.exit(f"the benchmark clip {CLIP} is missing")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model_dir, which = bench_model(args.model, tmp)
        card = load_card(model_dir)
        models = decoders_folder(model_dir, tmp)
        evidence, duration = make_evidence(model_dir, tmp / "evidence.mkv", args.frames, args.faces)
        reconstructor = Reconstructor(
            DecoderRegistry(models, None, providers="cpu", threads=args.threads, max_batch=32),
            LsbMessageSource({CAMERA: KEY}),
            max_batch=32,
        )
        reconstructor.decoders.get(card.model_id)  # load outside the timing
        if args.workers:
            print(f"model: {which} (id {card.model_id}); ONNX Runtime threads: {args.threads}")
            print(f"clip: 640x480 FFV1, {args.frames} frames, {duration:.1f} s, {args.faces} faces")
            if args.queue == "celery":
                print("queue: celery (a real redis-server, real uunet-authority worker processes)")
                bench_celery(
                    models,
                    evidence,
                    tmp,
                    args.workers,
                    segment_frames=args.segment_frames,
                    threads=args.threads,
                    camera=CAMERA,
                    key=KEY,
                )
                return
            bench_workers(reconstructor, evidence, tmp, args.workers, args.segment_frames)
            return
        rows = []
        for codec, suffix in (("libx264rgb", ".mp4"), ("ffv1", ".mkv")):
            codec_s = codec_only(evidence, tmp / f"copy{suffix}", codec)
            start = time.perf_counter()
            report = reconstructor.reconstruct_clip(evidence, tmp / f"out{suffix}", codec=codec)
            rows.append((codec, codec_s, time.perf_counter() - start))
        per_face = ud_ms_per_face(reconstructor, card.model_id, args.repeat)

    print(f"model: {which} (id {card.model_id}); ONNX Runtime threads: {args.threads}")
    print(
        f"clip: 640x480 FFV1, {report.frames} frames, {duration:.2f} s, "
        f"{report.faces} faces ({args.faces} per frame)"
    )
    print(f"{'result codec':12} {'':30} {'seconds':>8} {'x real time':>12} {'ms/frame':>9}")
    for codec, codec_s, full_s in rows:
        for label, seconds in (
            ("codec only (decode + encode)", codec_s),
            ("reconstruction (as a job)", full_s),
        ):
            print(
                f"{codec:12} {label:30} {seconds:8.2f} {duration / seconds:12.2f} "
                f"{1000 * seconds / report.frames:9.1f}"
            )
        print(f"{codec:12} reconstruction / codec-only time: {full_s / codec_s:.2f}")
    print("Ud ms per face: " + ", ".join(f"batch {b}: {ms:.2f}" for b, ms in per_face.items()))


if __name__ == "__main__":
    main()
