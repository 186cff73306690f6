"""P-DESTRE: UAV videos plus one annotation text file per video.

Layout read (names configurable): ``<root>/annotation/<video>.txt`` and
``<root>/videos/<video>.MP4`` (any of ``.mp4 .avi .mov .mkv``, any case), same stem.

Annotation format (:data:`PDESTRE_FORMAT`). One comma-separated line per person per frame, 26
numeric columns, as listed by public P-DESTRE readers (column meanings quoted from a reader that
follows the dataset's own ``read_annotations.py``):

====  ==============  ==========================================================
col   meaning         use here
====  ==============  ==========================================================
0     frame           frame number, counted from 1 (decode index = frame - 1)
1     ID              person identity, consistent across days -> subject
2-5   x, y, h, w      bounding box of the person (note the order: height first)
6     flag            ignored
7-9   yaw/pitch/roll  ignored
10    gender          0 male, 1 female, 2 unknown -> ``gender``
11    age             ignored
12    height          ignored
13    body volume     ignored
14    ethnicity       -> ``ethnicity`` (codes below)
15    hair colour     ignored
16    hairstyle       -> ``hairstyle`` (codes below)
17    beard           ignored
18    moustache       ignored
19    glasses         0 normal, 1 sun glasses, 2 no, 3 unknown -> ``glasses``
20-25 head accessories, upper/lower clothing, feet, accessories, action: ignored
====  ==============  ==========================================================

The gender and glasses codes are those the public reader lists. The ethnicity codes (0 white,
1 black, 2 asian, 3 indian, 4 unknown) and hairstyle codes (0 bald, 1 short, 2 medium, 3 long,
4 horse tail, 5 unknown) follow the dataset's published label list but their numeric order could
not be confirmed from a public source here: check them against your copy's documentation and
pass your own :class:`PdestreFormat` if they differ. A code outside a table is an error, never
guessed.

Here: subject = the person ID; sequence = the video (a person seen in several videos, e.g. on
different days, has several sequences); the box of each frame is the region and the crop is
:class:`~models.data.crops.HeadTop` of it; a sequence's labels are the majority of its frames'
known codes. Lines with a negative ID (unidentified people) are left out and counted.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.geometry import Box

from ._common import natural_key, require_dir
from .crops import CropRule, HeadTop
from .errors import AnnotationError, DatasetLayoutError
from .images import VIDEO_SUFFIXES
from .labels import class_index
from .tracklet import Tracklet

__all__ = ["PDESTRE_FORMAT", "PdestreFormat", "load_pdestre"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PdestreFormat:
    """Column layout and code tables of a P-DESTRE annotation file.

    Attributes:
        n_columns: cells per line (a line with another count is an error).
        frame, person: column indices of the frame number and the person ID.
        x, y, w, h: column indices of the box corner and size.
        first_frame: the frame number of the first decoded video frame.
        labels: our label name -> (column, {code: class name, or None for unknown}).
    """

    n_columns: int = 26
    frame: int = 0
    person: int = 1
    x: int = 2
    y: int = 3
    h: int = 4
    w: int = 5
    first_frame: int = 1
    labels: Mapping[str, tuple[int, Mapping[int, str | None]]] = field(
        default_factory=lambda: {
            "gender": (10, {0: "male", 1: "female", 2: None}),
            "ethnicity": (14, {0: "white", 1: "black", 2: "asian", 3: "indian", 4: None}),
            "hairstyle": (
                16,
                {0: "bald", 1: "short", 2: "medium", 3: "long", 4: "ponytail", 5: None},
            ),
            "glasses": (19, {0: "normal", 1: "sun", 2: "no", 3: None}),
        }
    )


PDESTRE_FORMAT = PdestreFormat()


@dataclass
class _Sequence:
    frames: dict[int, Box] = field(default_factory=dict)
    votes: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))


def load_pdestre(
    root: str | Path,
    *,
    annotations_dir: str = "annotation",
    videos_dir: str = "videos",
    fmt: PdestreFormat = PDESTRE_FORMAT,
    frame_step: int = 1,
    min_frames: int = 1,
    crop: CropRule | None = None,
) -> list[Tracklet]:
    """Load P-DESTRE tracklets: one per (person, video).

    Args:
        annotations_dir, videos_dir: folder names under ``root``.
        fmt: the annotation column layout and code tables.
        frame_step: keep every ``frame_step``-th annotated frame of a tracklet (videos are
            30 fps; neighbouring frames are near copies).
        min_frames: tracklets with fewer kept frames are left out (counted, logged).
        crop: head rule inside each person box (default :class:`HeadTop`).

    Raises:
        DatasetLayoutError: missing folders, no annotation file, or an annotation file without
            its video (or with two).
        AnnotationError: a line with the wrong cell count, a non-number, a non-integer frame or
            ID, a frame before ``first_frame``, an empty box, a code outside the tables, or the
            same person twice in one frame.
        ValueError: ``frame_step`` or ``min_frames`` < 1.
    """
    if frame_step < 1 or min_frames < 1:
        raise ValueError("frame_step and min_frames must be >= 1")
    root = require_dir(Path(root), "P-DESTRE root")
    ann_root = require_dir(root / annotations_dir, "P-DESTRE annotation")
    video_root = require_dir(root / videos_dir, "P-DESTRE videos")
    files = sorted(
        (
            p
            for p in ann_root.iterdir()
            if p.suffix.lower() == ".txt" and not p.name.startswith(".")
        ),
        key=lambda p: natural_key(p.name),
    )
    if not files:
        raise DatasetLayoutError("no annotation .txt file", ann_root)
    videos = _index_videos(video_root)
    rule = crop if crop is not None else HeadTop()
    tracklets: list[Tracklet] = []
    unidentified = short = 0
    for ann in files:
        video = videos.get(ann.stem.lower())
        if video is None:
            raise DatasetLayoutError(f"no video {ann.stem}.* in {video_root}", ann)
        sequences, dropped = _read_annotation(ann, fmt)
        unidentified += dropped
        for person in sorted(sequences):
            seq = sequences[person]
            numbers = sorted(seq.frames)[::frame_step]
            if len(numbers) < min_frames:
                short += 1
                continue
            labels = {}
            for name, votes in seq.votes.items():
                code, _ = votes.most_common(1)[0]
                labels[name] = class_index(name, fmt.labels[name][1][code])  # type: ignore[arg-type]
            tracklets.append(
                Tracklet(
                    subject=str(person),
                    sequence=ann.stem,
                    frames=(video,) * len(numbers),
                    labels=labels,
                    crop=rule,
                    boxes=tuple(seq.frames[n] for n in numbers),
                    frame_numbers=tuple(n - fmt.first_frame for n in numbers),
                    source="pdestre",
                )
            )
    if unidentified:
        log.info("%s: left out %d boxes of unidentified people (ID < 0)", root, unidentified)
    if short:
        log.info("%s: left out %d tracklets shorter than %d frames", root, short, min_frames)
    log.info(
        "%s: %d people, %d tracklets, %d frames",
        root,
        len({t.subject for t in tracklets}),
        len(tracklets),
        sum(len(t) for t in tracklets),
    )
    return tracklets


def _index_videos(video_root: Path) -> dict[str, Path]:
    videos: dict[str, Path] = {}
    for path in video_root.iterdir():
        if path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith("."):
            key = path.stem.lower()
            if key in videos:
                raise DatasetLayoutError(f"two videos for one annotation: {videos[key].name}", path)
            videos[key] = path
    return videos


def _read_annotation(path: Path, fmt: PdestreFormat) -> tuple[dict[int, _Sequence], int]:
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"cannot read annotation file: {exc}", path) from exc
    sequences: dict[int, _Sequence] = defaultdict(_Sequence)
    dropped = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.strip().rstrip(",").split(",")]
        if len(cells) != fmt.n_columns:
            raise AnnotationError(
                f"{len(cells)} cells, expected {fmt.n_columns}", path, line=line_no
            )
        try:
            values = [float(c) for c in cells]
        except ValueError:
            bad = next(c for c in cells if not _is_number(c))
            raise AnnotationError(f"not a number: {bad!r}", path, line=line_no) from None
        frame = _integer(values[fmt.frame], path, line_no, "frame")
        person = _integer(values[fmt.person], path, line_no, "ID")
        if frame < fmt.first_frame:
            raise AnnotationError(
                f"frame {frame} < first frame {fmt.first_frame}", path, line=line_no, field="frame"
            )
        if person < 0:
            dropped += 1
            continue
        box = _box(values[fmt.x], values[fmt.y], values[fmt.w], values[fmt.h], path, line_no)
        seq = sequences[person]
        if frame in seq.frames:
            raise AnnotationError(
                f"person {person} appears twice in frame {frame}", path, line=line_no
            )
        seq.frames[frame] = box
        for name, (column, table) in fmt.labels.items():
            code = _integer(values[column], path, line_no, name)
            if code not in table:
                raise AnnotationError(
                    f"code {code} is not in the {name} table {dict(table)}",
                    path,
                    line=line_no,
                    field=name,
                )
            if table[code] is not None:
                seq.votes[name][code] += 1
    return dict(sequences), dropped


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _integer(value: float, path: Path, line: int, name: str) -> int:
    if not math.isfinite(value) or value != int(value):
        raise AnnotationError(f"{value} is not an integer", path, line=line, field=name)
    return int(value)


def _box(x: float, y: float, w: float, h: float, path: Path, line: int) -> Box:
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise AnnotationError("box has a non-finite value", path, line=line, field="box")
    left, top = max(0, math.floor(x)), max(0, math.floor(y))
    right, bottom = math.ceil(x + w), math.ceil(y + h)
    if right <= left or bottom <= top:
        raise AnnotationError(f"empty box x={x} y={y} w={w} h={h}", path, line=line, field="box")
    return Box(left, top, right - left, bottom - top)
