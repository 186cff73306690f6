"""Suite section on real clips: the edge's own frame path, then leak rate, temporal
consistency, flicker, what a viewer sees at the ROI borders, and reversal fidelity (lossless and
H.264 at several CRFs).

Per video (at most ``max_frames`` frames):

1. edge path: the clip's frames go through the edge's :class:`~edge_agent.pipeline.
   FrameProcessor` built from the edge's default settings
   (:func:`models.evaluation.edge_path.build_edge_processor`: detector with its low-light pass
   and minimum face size, IoU tracker holding missed faces, head ROIs, one noise plane per
   track, ``Ue``, the card's feathered paste, the sealed ROI message);
2. leak rate: an independent detector runs on ``x``; a face it finds is *covered* when at least
   ``cover_fraction`` of its box lies inside the replaced (or blacked) ROIs; a frame leaks when
   any face is uncovered (frames with a face that nothing covers are exactly what the public
   would see);
3. temporal consistency (Fig. 7), on the frames where a track was detected (not held):
   recognizer embeddings of ``a`` patches of one track at different times are genuine pairs,
   ``a`` of different tracks impostors (same for ``x`` as the reference); this is the card's
   ``a_a_track``. Flicker: mean absolute change (0-255) between consecutive model-size patches
   of a track, for ``a`` and for ``x``;
4. the public face: the border step ratio across the replaced ROIs' borders
   (:mod:`models.evaluation.border`) and the luma/chroma high-frequency energy ratio of the
   public ROIs over the source ROIs at their size in the frame;
5. reversal: the public frames are encoded losslessly (FFV1) and with H.264 (yuv420p) at each
   CRF, decoded, reversed with the known boxes by the authority's
   :func:`~authority_service.reconstruction.reverse_faces` (the ROI message carries them: LSB
   for lossless, SEI for H.264) and compared with ``x`` inside the ROIs: PSNR, SSIM, L2
   residual, vs bitrate.
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

from models.evaluation.border import BorderSteps
from models.evaluation.deid import UUNetCodec
from models.evaluation.edge_path import ClipRun, build_edge_processor, run_clip
from models.evaluation.errors import EvaluationError
from models.evaluation.metrics import (
    flicker,
    genuine_impostor_scores,
    high_frequency_ratio,
    l2_residual,
    psnr,
    ssim,
    summarise_scores,
)
from models.evaluation.plots import decision_environments, line_plot
from models.evaluation.recognizers import FaceRecognizer
from shared.detectors import FaceDetector
from shared.geometry import Box, crop, resize_to_model
from shared.video_io import LosslessWriter, read_frames

__all__ = [
    "coverage",
    "encode_h264",
    "evaluate_video",
    "temporal_consistency",
    "track_patches",
]

TrackPatches = dict[Any, list[tuple[np.ndarray, np.ndarray]]]

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


def track_patches(run: ClipRun) -> TrackPatches:
    """``(x, a)`` ROI patches per track id, on the frames where the track was detected."""
    tracks: TrackPatches = defaultdict(list)
    for x, a, boxes, live in zip(run.sources, run.publics, run.boxes, run.tracks, strict=True):
        for track, roi in zip(live, boxes, strict=True):
            if track.missed == 0:
                tracks[track.id].append(
                    (np.ascontiguousarray(crop(x, roi)), np.ascontiguousarray(crop(a, roi)))
                )
    return dict(tracks)


def temporal_consistency(
    recognizer: FaceRecognizer,
    tracks: TrackPatches,
    per_track: int,
    max_impostors: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Same track = genuine, other tracks = impostors, for ``x`` (``x_t_x_tk``) and ``a``
    (``a_t_a_tk``), with up to ``per_track`` frames per track spread over it.

    Raises:
        EvaluationError: fewer than two tracks of at least two frames.
    """
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


def _leak(
    run: ClipRun, detector: FaceDetector, cover_fraction: float
) -> dict[str, float | int | str]:
    faces_seen = faces_uncovered = frames_with_faces = leak_frames = 0
    for x, boxes, blacked in zip(run.sources, run.boxes, run.blacked, strict=True):
        height, width = x.shape[:2]
        covered = [*boxes, *blacked]
        found = detector.detect(x)
        uncovered = [f for f in found if coverage(f.box, covered, width, height) < cover_fraction]
        faces_seen += len(found)
        faces_uncovered += len(uncovered)
        frames_with_faces += bool(found)
        leak_frames += bool(uncovered)
    return {
        "detector": detector.key,
        "cover_fraction": cover_fraction,
        "faces_found_in_x": faces_seen,
        "frames_with_faces": frames_with_faces,
        "uncovered_faces": faces_uncovered,
        "leak_frames": leak_frames,
        "leak_rate_frames": leak_frames / run.frames if run.frames else 0.0,
        "leak_rate_faces": faces_uncovered / faces_seen if faces_seen else 0.0,
    }


def _public_face(run: ClipRun, tracks: TrackPatches) -> dict[str, Any]:
    steps = BorderSteps()
    for source, public, boxes in zip(run.sources, run.publics, run.boxes, strict=True):
        steps.add(source, public, boxes)
    figures: dict[str, Any] = {"border_step_ratio": steps.as_dict()}
    pairs = [p for items in tracks.values() for p in items if min(p[0].shape[:2]) >= 3]
    if pairs:
        figures["hf_energy_ratio"] = high_frequency_ratio(
            [x for x, _ in pairs], [a for _, a in pairs]
        )
    return figures


def evaluate_video(
    path: Path,
    codec: UUNetCodec,
    edge_detector: FaceDetector | None,
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
    """Run the video measures on one clip (see the module docstring). ``edge_detector``
    replaces the edge's configured detector (``None``: the edge's own, from its defaults).

    Raises:
        shared.video_io.VideoDecodeError: the file is not a readable video.
        EvaluationError: the edge dropped a frame.
    """
    processor = build_edge_processor(codec, detector=edge_detector)
    run = run_clip(path, processor, max_frames=max_frames)
    tracks = track_patches(run)
    height, width = run.sources[0].shape[:2] if run.frames else (0, 0)
    result: dict[str, Any] = {
        "frames": run.frames,
        "size": [width, height],
        "fps": float(run.fps),
        "rois": run.rois,
        "frames_with_rois": sum(bool(b) for b in run.boxes),
        "held_rois": run.held_rois,
        "tracks": len(tracks),
        "edge_detector": processor.detector.key,
        "composition": codec.composition.to_card(),
        "plots": [],
    }
    if leak_detector is not None:
        result["leak"] = _leak(run, leak_detector, cover_fraction)
    long_tracks = {k: v for k, v in tracks.items() if len(v) >= 2}
    if long_tracks:
        size = codec.size
        result["flicker"] = {
            "tracks": len(long_tracks),
            **{
                version: float(
                    np.mean(
                        [
                            flicker([resize_to_model(p[k], size) for p in v])
                            for v in long_tracks.values()
                        ]
                    )
                )
                for version, k in (("a", 1), ("x", 0))
            },
        }
    if run.rois:
        result["public_face"] = _public_face(run, tracks)
    result["temporal"] = {}
    for recognizer in recognizers:
        try:
            figures, sets = temporal_consistency(recognizer, long_tracks, per_track, max_impostors)
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
    if run.frames and run.rois:
        result["reversal"] = _reversal(
            path, run.sources, run.publics, run.boxes, codec, run.fps, crfs, out_dir, result
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
