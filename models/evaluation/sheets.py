"""Contact sheets: what a viewer of the public stream and an investigator actually see.

    python -m models.evaluation.sheets --model models/weights/default \\
        --out docs/evaluation/round1 --label "round-1 model"

writes two PNGs into ``--out``, each titled with the model id, ``--label`` and composition:

* ``faces_x_a_r.png``: for a few held-out faces (one per person, from the identity folders of
  ``--media``), ``x | a | r`` at ROI sizes 32, 64, 128 and 256 px, each shown at its size in the
  frame (no rescaling of the sheet: a 32 px face is 32 px), through the edge's paste and the
  authority's reversal (:class:`~models.evaluation.deid.UUNetCodec`);
* ``frame_public_vs_source.png``: the frame of a real clip with the most replaced ROIs among its
  first ``--frames``, public (as the edge emits it, :mod:`models.evaluation.edge_path`) next to
  the source, and below them the region around its median-sized ROI enlarged (nearest, 3x
  where the sheet's width allows), so the border and the surrogate's texture can be judged.

Exit status 0, or 2 for bad input (missing model, media or clip).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from models.evaluation.deid import UUNetCodec
from models.evaluation.detectors import photo_detector
from models.evaluation.edge_path import build_edge_processor, run_clip
from models.evaluation.errors import EvaluationError
from models.evaluation.faces import load_identity_faces, show_at_size
from shared.geometry import Box
from shared.model_dir import ModelDirError
from shared.onnx_runner import ModelLoadError, ModelSignatureError

__all__ = ["SHEET_SIZES", "face_sheet", "frame_sheet", "main", "pick_faces"]

log = logging.getLogger(__name__)

SHEET_SIZES = (32, 64, 128, 256)
DEFAULT_CLIP = Path("videos/hamilton_640x360.mp4")
_GAP = 6
_TEXT_H = 22
_BACKGROUND = 255


def _text(image: np.ndarray, text: str, x: int, y: int, scale: float = 0.45) -> None:
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _title(width: int, lines: Sequence[str]) -> np.ndarray:
    band = np.full((_TEXT_H * len(lines) + 6, width, 3), _BACKGROUND, np.uint8)
    for k, line in enumerate(lines):
        _text(band, line, 6, _TEXT_H * (k + 1) - 4, 0.5)
    return band


def _header(codec: UUNetCodec, label: str) -> list[str]:
    c = codec.composition
    return [
        f"model {codec.card.model_id}" + (f" ({label})" if label else ""),
        f"composition: resample {c.resample}, feather {c.feather:g}, sizes {list(c.sizes)}",
    ]


def pick_faces(identity_dirs: Sequence[Path], count: int) -> list[np.ndarray]:
    """The first head crop of each person, across the folders in turn, ``count`` in all.

    Raises:
        EvaluationError: no folder gives ``count`` faces.
    """
    per_set = []
    for folder in identity_dirs:
        try:
            faces = load_identity_faces(folder, photo_detector(), max_identities=count)
        except EvaluationError as exc:
            log.warning("%s skipped: %s", folder, exc)
            continue
        per_set.append([crops[0] for crops in faces.faces.values()])
    picked: list[np.ndarray] = []
    for k in range(count):
        picked += [faces[k] for faces in per_set if k < len(faces)]
    if len(picked) < count:
        raise EvaluationError(f"found {len(picked)} faces in {list(identity_dirs)}, need {count}")
    return picked[:count]


def face_sheet(
    codec: UUNetCodec,
    faces: Sequence[np.ndarray],
    *,
    sizes: Sequence[int] = SHEET_SIZES,
    label: str = "",
) -> np.ndarray:
    """``x | a | r`` per face (rows) and ROI size (column groups), RGB uint8."""
    widths = [3 * s + 2 * 2 for s in sizes]
    width = sum(widths) + _GAP * (len(sizes) + 1)
    row_h = max(sizes) + _GAP
    body = np.full((_TEXT_H + row_h * len(faces), width, 3), _BACKGROUND, np.uint8)
    x0 = _GAP
    for size, group_w in zip(sizes, widths, strict=True):
        _text(body, f"{size} px: x | a | r", x0, _TEXT_H - 6)
        shown = [show_at_size(f, size) for f in faces]
        ids = list(range(len(faces)))
        public = codec.encode_patches(shown, ids)
        reversed_ = codec.decode_patches(public)
        for row, tiles in enumerate(zip(shown, public, reversed_, strict=True)):
            y = _TEXT_H + row * row_h
            for k, tile in enumerate(tiles):
                x = x0 + k * (size + 2)
                body[y : y + size, x : x + size] = tile
        x0 += group_w + _GAP
    return np.concatenate([_title(width, _header(codec, label)), body])


def frame_sheet(
    codec: UUNetCodec, clip: Path, *, max_frames: int = 60, label: str = "", zoom: int = 3
) -> np.ndarray:
    """Public vs source for the clip's frame with most ROIs, and a zoom on its median ROI.

    Raises:
        EvaluationError: no ROI was replaced in the frames read.
        shared.video_io.VideoDecodeError: the clip is not readable.
    """
    run = run_clip(clip, build_edge_processor(codec), max_frames=max_frames)
    if not run.rois:
        raise EvaluationError(f"{clip.name}: no face replaced in {run.frames} frames")
    index = max(range(run.frames), key=lambda k: len(run.boxes[k]))
    source, public, boxes = run.sources[index], run.publics[index], run.boxes[index]
    height, width = source.shape[:2]
    top = np.full((height + _TEXT_H, 2 * width + _GAP, 3), _BACKGROUND, np.uint8)
    top[_TEXT_H:, :width] = public
    top[_TEXT_H:, width + _GAP :] = source
    _text(top, f"public (frame {index} of {clip.name}, {len(boxes)} ROIs)", 4, _TEXT_H - 6)
    _text(top, "source", width + _GAP + 4, _TEXT_H - 6)
    big = sorted(boxes, key=lambda b: b.area)[len(boxes) // 2]
    pad = max(big.w, big.h) // 2
    region = Box(
        max(0, big.x - pad),
        max(0, big.y - pad),
        min(width, big.right + pad) - max(0, big.x - pad),
        min(height, big.bottom + pad) - max(0, big.y - pad),
    )
    zoom = max(1, min(zoom, (top.shape[1] - _GAP) // (2 * region.w)))  # both side by side
    crops = [
        cv2.resize(
            f[region.y : region.bottom, region.x : region.right],
            None,
            fx=zoom,
            fy=zoom,
            interpolation=cv2.INTER_NEAREST,
        )
        for f in (public, source)
    ]
    zoom_h, zoom_w = crops[0].shape[:2]
    bottom = np.full((zoom_h + _TEXT_H, top.shape[1], 3), _BACKGROUND, np.uint8)
    for k, crop in enumerate(crops):
        x = k * (zoom_w + _GAP)
        bottom[_TEXT_H:, x : x + zoom_w] = crop
    _text(bottom, f"median ROI {big.w}x{big.h} px, {zoom}x: public | source", 4, _TEXT_H - 6)
    sheet = np.concatenate([top, bottom])
    return np.concatenate([_title(sheet.shape[1], _header(codec, label)), sheet])


def _write(path: Path, rgb: np.ndarray) -> Path:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"cannot write {path}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, write the two sheets, print their paths; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m models.evaluation.sheets")
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    parser.add_argument("--media", type=Path, default=Path("../shared/media"))
    parser.add_argument(
        "--identities",
        type=Path,
        action="append",
        default=None,
        help="identity folder of held-out people (default: faceapi_bbt and orl_att_faces)",
    )
    parser.add_argument("--clip", type=Path, default=None, help=f"default: MEDIA/{DEFAULT_CLIP}")
    parser.add_argument("--faces", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60, help="frames of the clip read")
    parser.add_argument("--label", default="", help="shown after the model id")
    args = parser.parse_args(argv)
    identities = args.identities or [
        args.media / "identities" / "faceapi_bbt",
        args.media / "identities" / "orl_att_faces",
    ]
    clip = args.clip or args.media / DEFAULT_CLIP
    try:
        if not clip.is_file():
            raise EvaluationError(f"clip not found: {clip}")
        codec = UUNetCodec(args.model)
        args.out.mkdir(parents=True, exist_ok=True)
        faces = pick_faces(identities, args.faces)
        written = [
            _write(args.out / "faces_x_a_r.png", face_sheet(codec, faces, label=args.label)),
            _write(
                args.out / "frame_public_vs_source.png",
                frame_sheet(codec, clip, max_frames=args.frames, label=args.label),
            ),
        ]
    except (EvaluationError, ModelDirError, ModelLoadError, ModelSignatureError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 (CLI output)
        return 2
    for path in written:
        print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
