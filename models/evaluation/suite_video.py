"""Suite section on real clips: the edge path frame by frame, then temporal consistency,
flicker, leak rate and reversal fidelity (lossless and H.264 at several CRFs).

Per video (at most ``max_frames`` frames):

1. edge path, as the edge runs it: the edge detector finds faces, the edge's IoU tracker
   (:class:`shared.tracking.IouTracker` with the edge's defaults) links them and holds a missed
   face for a few frames at its (grown) last box, every live track's box grows to a head ROI
   (``expand_to_head``), each track keeps one noise plane, ``Ue`` replaces the ROIs
   (:meth:`UUNetCodec.encode_frame`);
2. leak rate: an independent detector runs on ``x``; a face it finds is *covered* when at least
   ``cover_fraction`` of its box lies inside the replaced ROIs; a frame leaks when any face is
   uncovered (frames with a face that nothing covers are exactly what the public would see);
3. temporal consistency (Fig. 7), on the frames where a track was detected (not held):
   recognizer embeddings of ``a`` patches of one track at different times are genuine pairs,
   ``a`` of different tracks impostors (same for ``x`` as the reference); flicker: mean absolute
   change (0-255) between consecutive 64x64 patches of a track, for ``a`` and for ``x``;
4. reversal: the ``a`` frames are encoded losslessly (FFV1) and with H.264 (yuv420p) at each CRF,
   decoded, reversed with the known boxes (the ROI message carries them: LSB for lossless, SEI
   for H.264) and compared with ``x`` inside the ROIs: PSNR, SSIM, L2 residual, vs bitrate.
"""

from __future__ import annotations

import logging
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from models.evaluation.deid import UUNetCodec
from models.evaluation.errors import EvaluationError
from models.evaluation.metrics import (
    flicker,
    genuine_impostor_scores,
    l2_residual,
    psnr,
    ssim,
    summarise_scores,
)
from models.evaluation.plots import decision_environments, line_plot
from models.evaluation.recognizers import FaceRecognizer
from shared.detectors import FaceDetector
from shared.geometry import Box, crop, expand_to_head, resize_to_model
from shared.tracking import IouTracker
from shared.video_io import LosslessWriter, probe, read_frames

__all__ = ["coverage", "encode_h264", "evaluate_video"]

log = logging.getLogger(__name__)


def coverage(face: Box, rois: Sequence[Box], width: int, height: int) -> float:
    """Fraction of ``face``'s pixels inside the union of ``rois``."""
    mask = np.zeros((height, width), dtype=bool)
    for roi in rois:
        mask[roi.y : roi.bottom, roi.x : roi.right] = True
    return float(mask[face.y : face.bottom, face.x : face.right].mean())


def encode_h264(frames: Sequence[np.ndarray], path: Path, fps: Fraction, crf: int) -> None:
    """Encode RGB frames with libx264 yuv420p at ``crf`` (preset veryfast); odd sizes are padded
    by one replicated row/column (cropped again by :func:`decode_all`)."""
    height, width = frames[0].shape[:2]
    even_w, even_h = width + width % 2, height + height % 2
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = even_w, even_h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for index, rgb in enumerate(frames):
            if (even_w, even_h) != (width, height):
                rgb = np.pad(rgb, ((0, even_h - height), (0, even_w - width), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def decode_all(path: Path, width: int, height: int) -> list[np.ndarray]:
    """Every frame of a file, cropped to ``width x height``."""
    return [f.rgb[:height, :width] for f in read_frames(path)]


def _roi_fidelity(
    originals: Sequence[np.ndarray],
    reversed_frames: Sequence[np.ndarray],
    boxes: Sequence[Sequence[Box]],
) -> dict[str, float | int]:
    psnrs, ssims, l2s = [], [], []
    for x, r, frame_boxes in zip(originals, reversed_frames, boxes, strict=True):
        for box in frame_boxes:
            xp, rp = crop(x, box), crop(r, box)
            psnrs.append(psnr(xp, rp))
            ssims.append(ssim(xp, rp))
            l2s.append(l2_residual(xp, rp))
    if not psnrs:
        return {"rois": 0}
    finite = [p for p in psnrs if np.isfinite(p)]
    return {
        "rois": len(psnrs),
        "psnr_db": float(np.mean(finite)) if finite else float("inf"),
        "exact_fraction": float(np.mean([not np.isfinite(p) for p in psnrs])),
        "ssim": float(np.mean(ssims)),
        "l2_residual": float(np.mean(l2s)),
    }


def _temporal(
    recognizer: FaceRecognizer,
    tracks: dict[int, list[tuple[np.ndarray, np.ndarray]]],
    per_track: int,
    max_impostors: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    x_faces, a_faces, labels = [], [], []
    for track_id, items in tracks.items():
        if len(items) < 2:
            continue
        picks = np.linspace(0, len(items) - 1, min(per_track, len(items))).round().astype(int)
        for k in sorted(set(picks.tolist())):
            x_faces.append(items[k][0])
            a_faces.append(items[k][1])
            labels.append(str(track_id))
    if len(set(labels)) < 2:
        raise EvaluationError("temporal consistency needs at least two tracks of >= 2 frames")
    geometries = [recognizer.locate(face) for face in x_faces]
    ex = recognizer.embed(x_faces, geometries)
    ea = recognizer.embed(a_faces, geometries)
    sets = {
        "x_t_x_tk": genuine_impostor_scores(ex, labels, max_impostors=max_impostors),
        "a_t_a_tk": genuine_impostor_scores(ea, labels, max_impostors=max_impostors),
    }
    return {name: summarise_scores(s) for name, s in sets.items()}, sets


def evaluate_video(
    path: Path,
    codec: UUNetCodec,
    edge_detector: FaceDetector,
    leak_detector: FaceDetector | None,
    recognizers: Sequence[FaceRecognizer],
    out_dir: Path,
    *,
    max_frames: int = 150,
    crfs: Sequence[int] = (18, 23, 28),
    cover_fraction: float = 0.8,
    per_track: int = 12,
    max_impostors: int = 100_000,
) -> dict[str, Any]:
    """Run the video measures on one clip (see the module docstring).

    Raises:
        shared.video_io.VideoDecodeError: the file is not a readable video.
    """
    info = probe(path)
    tracker = IouTracker()
    noise_by_track: dict[int, np.ndarray] = {}
    originals, anonymized, boxes_per_frame = [], [], []
    tracks: dict[int, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    leak_frames = faces_seen = faces_uncovered = frames_with_faces = held_rois = 0
    for video_frame in read_frames(path):
        if video_frame.index >= max_frames:
            break
        x = video_frame.rgb
        height, width = x.shape[:2]
        live = tracker.update([d.box for d in edge_detector.detect(x)], width, height)
        rois = [expand_to_head(t.box, width, height) for t in live]
        held_rois += sum(1 for t in live if t.missed)
        for track in live:
            if track.id not in noise_by_track:
                noise_by_track[track.id] = codec.new_noise(1)[0]
        noise = np.stack([noise_by_track[t.id] for t in live]) if live else None
        a = codec.encode_frame(x, rois, noise)
        for track, roi in zip(live, rois, strict=True):
            if track.missed == 0:
                tracks[track.id].append(
                    (np.ascontiguousarray(crop(x, roi)), np.ascontiguousarray(crop(a, roi)))
                )
        for track_id in tracker.ended:
            noise_by_track.pop(track_id, None)
        if leak_detector is not None:
            found = leak_detector.detect(x)
            uncovered = [f for f in found if coverage(f.box, rois, width, height) < cover_fraction]
            faces_seen += len(found)
            faces_uncovered += len(uncovered)
            frames_with_faces += bool(found)
            leak_frames += bool(uncovered)
        originals.append(x)
        anonymized.append(a)
        boxes_per_frame.append(rois)
    frames = len(originals)
    result: dict[str, Any] = {
        "frames": frames,
        "size": [info.width, info.height],
        "fps": float(info.fps),
        "rois": sum(len(b) for b in boxes_per_frame),
        "frames_with_rois": sum(bool(b) for b in boxes_per_frame),
        "held_rois": held_rois,
        "tracks": len(tracks),
        "edge_detector": edge_detector.key,
        "plots": [],
    }
    if leak_detector is not None:
        result["leak"] = {
            "detector": leak_detector.key,
            "cover_fraction": cover_fraction,
            "faces_found_in_x": faces_seen,
            "frames_with_faces": frames_with_faces,
            "uncovered_faces": faces_uncovered,
            "leak_frames": leak_frames,
            "leak_rate_frames": leak_frames / frames if frames else 0.0,
            "leak_rate_faces": faces_uncovered / faces_seen if faces_seen else 0.0,
        }
    long_tracks = {k: v for k, v in tracks.items() if len(v) >= 2}
    if long_tracks:
        size = codec.size
        result["flicker"] = {
            "tracks": len(long_tracks),
            "a": float(
                np.mean(
                    [
                        flicker([resize_to_model(p[1], size) for p in v])
                        for v in long_tracks.values()
                    ]
                )
            ),
            "x": float(
                np.mean(
                    [
                        flicker([resize_to_model(p[0], size) for p in v])
                        for v in long_tracks.values()
                    ]
                )
            ),
        }
    result["temporal"] = {}
    for recognizer in recognizers:
        try:
            figures, sets = _temporal(recognizer, long_tracks, per_track, max_impostors)
        except EvaluationError as exc:
            result["temporal"][recognizer.name] = {"skipped": str(exc)}
            continue
        result["temporal"][recognizer.name] = figures
        plot = decision_environments(
            [("x_t <-> x_t+k", sets["x_t_x_tk"]), ("a_t <-> a_t+k", sets["a_t_a_tk"])],
            out_dir / f"{path.stem}_temporal_{recognizer.name}.png",
            title=f"{path.name}: same track = genuine ({recognizer.name})",
        )
        result["plots"].append(plot.name)
    if frames and result["rois"]:
        result["reversal"] = _reversal(
            path, originals, anonymized, boxes_per_frame, codec, info.fps, crfs, out_dir, result
        )
    return result


def _reversal(
    path: Path,
    originals: list[np.ndarray],
    anonymized: list[np.ndarray],
    boxes: list[list[Box]],
    codec: UUNetCodec,
    fps: Fraction,
    crfs: Sequence[int],
    out_dir: Path,
    result: dict[str, Any],
) -> dict[str, Any]:
    height, width = originals[0].shape[:2]
    duration = len(originals) / float(fps)
    reversal: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="uunet-eval-") as tmp:
        encodings = [("lossless_ffv1", None)] + [(f"h264_crf{c}", c) for c in crfs]
        for name, crf in encodings:
            file = Path(tmp) / f"{name}.mkv"
            if crf is None:
                with LosslessWriter(file, width, height, fps, codec="ffv1") as writer:
                    for frame in anonymized:
                        writer.write(frame)
            else:
                encode_h264(anonymized, file, fps, crf)
            decoded = decode_all(file, width, height)
            if len(decoded) != len(anonymized):
                raise EvaluationError(
                    f"{path.name}: {name} gave {len(decoded)} frames for {len(anonymized)}"
                )
            restored = [codec.decode_frame(f, b) for f, b in zip(decoded, boxes, strict=True)]
            figures = _roi_fidelity(originals, restored, boxes)
            figures["bitrate_kbps"] = file.stat().st_size * 8 / duration / 1000.0
            if crf is not None:
                figures["crf"] = crf
            reversal[name] = figures
    lossy = [reversal[f"h264_crf{c}"] for c in crfs]
    if lossy:
        plot = line_plot(
            {
                "H.264 (yuv420p)": (
                    [f["bitrate_kbps"] for f in lossy],
                    [f["psnr_db"] for f in lossy],
                )
            },
            out_dir / f"{path.stem}_psnr_vs_bitrate.png",
            xlabel="bitrate of the de-identified video (kbit/s)",
            ylabel="PSNR r vs x in ROIs (dB)",
            title=f"{path.name}: reversal after lossy coding (CRF {', '.join(map(str, crfs))})",
            logx=True,
        )
        result["plots"].append(plot.name)
    return reversal
