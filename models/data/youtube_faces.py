"""YouTube Faces: ``frame_images_DB/<person>/<video>/<video>.<frame>.jpg`` + face boxes.

Beside each person folder, ``frame_images_DB/<person>.labeled_faces.txt`` gives one face box per
frame: ``<person>\\<video>\\<video>.<frame>.jpg,<ignored>,<cx>,<cy>,<w>,<h>,<ignored>,<ignored>``
(box centre and size in pixels). Here:

* subject = the person folder; sequence = the video folder; frames in frame-number order;
* region = the listed face box; crop = :class:`~models.data.crops.FaceToHead` (the edge's own
  head ROI around a face box), so crops are framed like what the edge feeds ``Ue``;
* strict: every frame needs a box line and every line needs its frame. A person without a
  ``.labeled_faces.txt`` is an error unless ``missing_boxes="full"`` (then whole frames are used:
  only sensible when the frames are already face crops).

YouTube Faces has no soft labels; add them with ``labels_csv`` (``subject[,sequence],...``).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Literal

from shared.geometry import Box

from ._common import check_frames, list_images, natural_key, require_dir
from .crops import CropRule, FaceToHead, FullFrame
from .errors import AnnotationError, DatasetLayoutError, EmptySequenceError
from .tracklet import Tracklet
from .tracklet_folder import apply_labels_csv

__all__ = ["load_youtube_faces"]

log = logging.getLogger(__name__)

_FRAME = re.compile(r"^(?P<video>[^.\\/]+)\.(?P<frame>\d+)\.jpg$")
_BOX_SUFFIX = ".labeled_faces.txt"


def load_youtube_faces(
    root: str | Path,
    *,
    labels_csv: str | Path | None = None,
    missing_boxes: Literal["error", "full"] = "error",
    crop: CropRule | None = None,
    check_images: bool = True,
) -> list[Tracklet]:
    """Load YouTube Faces tracklets (one per video) from ``root`` (holding ``frame_images_DB``).

    Args:
        labels_csv: optional soft labels per person (or per video).
        missing_boxes: what to do for a person without a ``.labeled_faces.txt``.
        crop: rule applied to each face box (default :class:`FaceToHead` margin 0.25).
        check_images: check every frame's image signature (no decoding).

    Raises:
        DatasetLayoutError: no ``frame_images_DB``, a stray file, a frame name not
            ``<video>.<frame>.jpg`` or naming another video, a missing box file.
        EmptySequenceError: a person or video folder without frames.
        AnnotationError: a malformed box line, a line for a frame that does not exist, a frame
            without a line, or two lines for one frame.
        ImageReadError: an empty or non-image frame file (``check_images``).
        LabelsFileError: bad labels CSV.
    """
    root = Path(root)
    db = root if root.name == "frame_images_DB" else root / "frame_images_DB"
    require_dir(db, "YouTube Faces frame_images_DB")
    people: list[Path] = []
    box_files: set[str] = set()
    for entry in db.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            people.append(entry)
        elif entry.name.endswith(_BOX_SUFFIX):
            box_files.add(entry.name[: -len(_BOX_SUFFIX)])
        else:
            raise DatasetLayoutError("unexpected file in frame_images_DB", entry)
    if not people:
        raise DatasetLayoutError("no person folder", db)
    orphans = box_files - {p.name for p in people}
    if orphans:
        raise DatasetLayoutError(f"box files without a person folder: {sorted(orphans)[:5]}", db)
    face_rule = crop if crop is not None else FaceToHead()
    tracklets: list[Tracklet] = []
    for person_dir in sorted(people, key=lambda p: natural_key(p.name)):
        person = person_dir.name
        videos = _person_videos(person_dir, check_images)
        if person in box_files:
            boxes = _read_boxes(db / f"{person}{_BOX_SUFFIX}", person, videos)
            for video, frames in videos.items():
                tracklets.append(
                    Tracklet(
                        person,
                        video,
                        tuple(frames),
                        crop=face_rule,
                        boxes=tuple(boxes[(video, f.name)] for f in frames),
                        source="youtube_faces",
                    )
                )
        elif missing_boxes == "full":
            log.warning("%s: no %s; using whole frames", person_dir, _BOX_SUFFIX)
            for video, frames in videos.items():
                tracklets.append(
                    Tracklet(person, video, tuple(frames), crop=FullFrame(), source="youtube_faces")
                )
        else:
            raise DatasetLayoutError(
                f"no {person}{_BOX_SUFFIX} face boxes (pass missing_boxes='full' for face crops)",
                person_dir,
            )
    if labels_csv is not None:
        tracklets = apply_labels_csv(tracklets, Path(labels_csv))
    log.info("%s: %d people, %d videos", db, len(people), len(tracklets))
    return tracklets


def _person_videos(person_dir: Path, check_images: bool) -> dict[str, list[Path]]:
    videos: dict[str, list[Path]] = {}
    entries = [e for e in person_dir.iterdir() if not e.name.startswith(".")]
    if not entries:
        raise EmptySequenceError("person folder has no video folder", person_dir)
    for video_dir in sorted(entries, key=lambda p: natural_key(p.name)):
        if not video_dir.is_dir():
            raise DatasetLayoutError("unexpected file in a person folder", video_dir)
        frames = list_images(video_dir, "video")
        if not frames:
            raise EmptySequenceError("video folder has no frame", video_dir)
        numbered = []
        for frame in frames:
            match = _FRAME.match(frame.name)
            if match is None:
                raise DatasetLayoutError("frame name is not <video>.<frame>.jpg", frame)
            if match["video"] != video_dir.name:
                raise DatasetLayoutError(
                    f"frame of video {match['video']} in folder {video_dir.name}", frame
                )
            numbered.append((int(match["frame"]), frame))
        numbered.sort()
        if check_images:
            check_frames(p for _, p in numbered)
        videos[video_dir.name] = [p for _, p in numbered]
    return videos


def _read_boxes(
    path: Path, person: str, videos: dict[str, list[Path]]
) -> dict[tuple[str, str], Box]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"cannot read box file: {exc}", path) from exc
    wanted = {(video, f.name) for video, frames in videos.items() for f in frames}
    boxes: dict[tuple[str, str], Box] = {}
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 8:
            raise AnnotationError(f"{len(cells)} cells, expected 8", path, line=line_no)
        parts = re.split(r"[\\/]", cells[0])
        if len(parts) != 3 or parts[0] != person:
            raise AnnotationError(
                f"frame path {cells[0]!r} is not {person}\\<video>\\<frame>.jpg", path, line=line_no
            )
        key = (parts[1], parts[2])
        if key not in wanted:
            raise AnnotationError(f"frame {cells[0]!r} does not exist", path, line=line_no)
        if key in boxes:
            raise AnnotationError(f"second box for {cells[0]!r}", path, line=line_no)
        try:
            cx, cy, w, h = (float(c) for c in cells[2:6])
        except ValueError:
            raise AnnotationError(
                "box values are not numbers", path, line=line_no, field="box"
            ) from None
        if not all(math.isfinite(v) for v in (cx, cy, w, h)) or w <= 0 or h <= 0:
            raise AnnotationError(
                f"bad box centre/size {cells[2:6]}", path, line=line_no, field="box"
            )
        left, top = max(0, math.floor(cx - w / 2)), max(0, math.floor(cy - h / 2))
        right, bottom = math.ceil(cx + w / 2), math.ceil(cy + h / 2)
        if right <= left or bottom <= top:
            raise AnnotationError("box lies outside the frame", path, line=line_no, field="box")
        boxes[key] = Box(left, top, right - left, bottom - top)
    missing = sorted(wanted - boxes.keys())
    if missing:
        raise AnnotationError(
            f"{len(missing)} frames have no box, e.g. {missing[0][0]}/{missing[0][1]}", path
        )
    return boxes
