"""Face tracklets from raw footage: a video file (or a folder of them) through the edge's detector
and tracker, for video without face crops or annotations.

Per video, frames are decoded in order (``shared.video_io``); every ``frame_step``-th frame goes
through a ``shared.detectors`` detector (default: the edge's, ``yunet`` with the edge's default
thresholds), the face boxes through the edge's IoU tracker (:class:`shared.tracking.IouTracker`,
which then sees every ``frame_step``-th frame), and each detected face's head ROI is cut as the
edge cuts it (:func:`shared.geometry.expand_to_head`, margin
:data:`shared.geometry.HEAD_MARGIN` like the edge's ``detector.head_margin``). Frames where a
track is only held (missed by the detector) are not used. Tracks with fewer than ``min_frames``
detected frames are left out (counted, logged).

Each track is one :class:`~models.data.tracklet.Tracklet`: ``frames`` repeat the video path,
``frame_numbers`` are the decode indices and ``boxes`` the head ROIs, with the crop rule
``"full"``, so :func:`~models.data.pack.pack_tracklets` crops exactly those boxes (and squashes
an ROI clipped at the frame border to square, as the edge does).

Subjects: by default one per track, named ``<video stem>-t<track id>`` (also the sequence name).
A tracks CSV maps tracks to subjects (and may add soft labels)::

    video,track,subject[,<label>,...]
    lobby.mp4,0,alice,female
    lobby.mp4,3,alice,female
    yard.mkv,1,bob,male

``video`` is the file name, ``track`` the track id (the number after ``-t``), ``subject`` any
name; label columns are label names with a vocabulary (:data:`models.data.labels.VOCABULARIES`),
cells as in :func:`models.data._common.read_labels_csv`. Tracks without a row keep their own
subject. Track ids depend on the detector, its settings, ``frame_step`` and ``max_frames``: pack
once without the CSV, look at each sequence's crops (``PackedFaces.sequence_names``), then write
the CSV for those same settings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.config import DetectorSettings
from shared.detectors import (
    DEFAULT_DETECTOR,
    DetectorError,
    FaceDetector,
    create_detector,
)
from shared.geometry import HEAD_MARGIN, Box, expand_to_head
from shared.tracking import DEFAULT_IOU_THRESHOLD, DEFAULT_MAX_MISSED, IouTracker

from ._common import (
    check_label_columns,
    label_vocabularies,
    natural_key,
    parse_label_cells,
    read_csv_rows,
)
from .errors import DatasetLayoutError, EmptySequenceError, ImageReadError, LabelsFileError
from .images import VIDEO_SUFFIXES
from .tracklet import Tracklet

__all__ = [
    "EDGE_DETECTOR_OPTIONS",
    "TrackRow",
    "VideoTrack",
    "list_videos",
    "load_videos",
    "read_tracks_csv",
    "track_video",
]

log = logging.getLogger(__name__)

#: The edge's default detector settings (the faces it replaces), taken from its own config.
EDGE_DETECTOR_OPTIONS = DetectorSettings().detector_options()
_TRACKS_HEADER = ("video", "track", "subject")


@dataclass
class VideoTrack:
    """The detected frames of one track: decode indices and head ROIs (frame pixels)."""

    frame_numbers: list[int] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)


@dataclass(frozen=True)
class TrackRow:
    """One row of a tracks CSV: the subject (and known labels) of a video's track."""

    subject: str
    labels: Mapping[str, int]
    line: int


def list_videos(path: Path) -> list[Path]:
    """``path`` itself if it is a video file, else the video files of the folder ``path``.

    Raises:
        DatasetLayoutError: missing path, a file that is not a video, a folder holding anything
            but video files (hidden entries aside), no video, or two videos with one stem.
    """
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise DatasetLayoutError(f"not a video file (known: {', '.join(VIDEO_SUFFIXES)})", path)
        return [path]
    if not path.is_dir():
        raise DatasetLayoutError("video file or folder not found", path)
    videos: dict[str, Path] = {}
    for entry in path.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir() or entry.suffix.lower() not in VIDEO_SUFFIXES:
            raise DatasetLayoutError(
                f"unexpected entry in a videos folder (only {', '.join(VIDEO_SUFFIXES)} files)",
                entry,
            )
        if entry.stem in videos:
            raise DatasetLayoutError(f"two videos named {entry.stem}.*", entry)
        videos[entry.stem] = entry
    if not videos:
        raise DatasetLayoutError("no video file inside", path)
    return sorted(videos.values(), key=lambda p: natural_key(p.name))


def track_video(
    video: Path,
    detector: FaceDetector,
    *,
    frame_step: int = 1,
    max_frames: int | None = None,
    head_margin: float = HEAD_MARGIN,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    max_missed: int = DEFAULT_MAX_MISSED,
) -> tuple[dict[int, VideoTrack], dict[str, int]]:
    """Detect and track the faces of one video; return its tracks (by id) and counts.

    Raises:
        ImageReadError: the file is not a decodable video, decoding fails part-way, or the
            detector fails on a frame (the message names the frame).
    """
    from shared.video_io import VideoDecodeError, read_frames  # PyAV: only for video sources

    tracker = IouTracker(iou_threshold=iou_threshold, max_missed=max_missed, hold_growth=0.0)
    tracks: dict[int, VideoTrack] = {}
    counts = {"frames_decoded": 0, "frames_detected": 0, "faces": 0}
    frames = read_frames(video)
    try:
        for frame in frames:
            if max_frames is not None and frame.index >= max_frames:
                break
            counts["frames_decoded"] += 1
            if frame.index % frame_step:
                continue
            height, width = frame.rgb.shape[:2]
            try:
                found = detector.detect(frame.rgb)
            except DetectorError as exc:
                raise ImageReadError(f"frame {frame.index}: {exc}", video) from exc
            counts["frames_detected"] += 1
            counts["faces"] += len(found)
            for track in tracker.update([d.box for d in found], width, height):
                if track.missed:
                    continue
                entry = tracks.setdefault(track.id, VideoTrack())
                entry.frame_numbers.append(frame.index)
                entry.boxes.append(expand_to_head(track.box, width, height, head_margin))
    except VideoDecodeError as exc:
        raise ImageReadError(str(exc), video) from exc
    finally:
        frames.close()
    return tracks, counts


def read_tracks_csv(
    path: Path, vocabularies: Mapping[str, tuple[str, ...]] | None = None
) -> dict[tuple[str, int], TrackRow]:
    """Read a tracks CSV (see the module docstring), keyed by ``(video file name, track id)``.

    Raises:
        LabelsFileError: missing/unreadable file, a header not starting ``video,track,subject``,
            an unknown/duplicate/``id`` label column, a wrong cell count, an empty video or
            subject, a track that is not an integer >= 0, a bad label value, or a duplicate row.
    """
    vocab = label_vocabularies(vocabularies)
    header, lines = read_csv_rows(path, "tracks")
    if tuple(header[:3]) != _TRACKS_HEADER:
        raise LabelsFileError("the header must start with 'video,track,subject'", path, line=1)
    label_columns = header[3:]
    check_label_columns(path, label_columns, vocab)
    rows: dict[tuple[str, int], TrackRow] = {}
    for line, row in lines:
        video, track_cell, subject = (cell.strip() for cell in row[:3])
        if not video:
            raise LabelsFileError("empty video", path, field="video", line=line)
        if not subject:
            raise LabelsFileError("empty subject", path, field="subject", line=line)
        if not track_cell.isdigit():
            raise LabelsFileError(
                f"track must be an integer >= 0, got {track_cell!r}", path, field="track", line=line
            )
        key = (video, int(track_cell))
        if key in rows:
            raise LabelsFileError(
                f"duplicate row (first on line {rows[key].line})", path, field="track", line=line
            )
        labels = parse_label_cells(path, label_columns, row[3:], vocab, line)
        rows[key] = TrackRow(subject, labels, line)
    return rows


def load_videos(
    path: str | Path,
    tracks_csv: str | Path | None = None,
    *,
    detector: FaceDetector | None = None,
    frame_step: int = 1,
    min_frames: int = 4,
    max_frames: int | None = None,
    head_margin: float = HEAD_MARGIN,
    source: str = "videos",
    vocabularies: Mapping[str, tuple[str, ...]] | None = None,
) -> list[Tracklet]:
    """Face tracklets of a video file or of every video in a folder (see the module docstring).

    Args:
        path: a video file, or a folder holding only video files.
        tracks_csv: optional ``video,track,subject[,<label>...]`` file mapping tracks to
            subjects.
        detector: a ``shared.detectors`` detector (default: ``yunet`` with
            :data:`EDGE_DETECTOR_OPTIONS`).
        frame_step: run the detector on every ``frame_step``-th frame (0, n, 2n...).
        min_frames: tracks with fewer detected frames are left out.
        max_frames: decode at most this many frames of each video (``None``: all).
        head_margin: face box -> head ROI margin (the edge's default).
        source: the dataset key written into the tracklets.
        vocabularies: extra label vocabularies for the CSV's label columns.

    Raises:
        DatasetLayoutError: see :func:`list_videos`.
        ImageReadError: a video cannot be decoded, or the detector fails on one of its frames.
        EmptySequenceError: no track of at least ``min_frames`` frames in any video.
        LabelsFileError: see :func:`read_tracks_csv`; also a row naming a video that is not
            loaded or a track id the video does not have.
        ValueError: ``frame_step``, ``min_frames`` or ``max_frames`` < 1.
        shared.detectors.DetectorUnavailableError: the default detector's package is missing.
    """
    if frame_step < 1 or min_frames < 1 or (max_frames is not None and max_frames < 1):
        raise ValueError("frame_step, min_frames and max_frames must be >= 1")
    path = Path(path)
    videos = list_videos(path)
    csv_path = Path(tracks_csv) if tracks_csv is not None else None
    rows = read_tracks_csv(csv_path, vocabularies) if csv_path is not None else {}
    loaded = {v.name for v in videos}
    for (video_name, _), row in rows.items():
        if video_name not in loaded:
            raise LabelsFileError(
                f"video {video_name!r} is not among the videos of {path}",
                csv_path,
                field="video",
                line=row.line,
            )
    if detector is None:
        detector = create_detector(DEFAULT_DETECTOR, EDGE_DETECTOR_OPTIONS)
    tracklets: list[Tracklet] = []
    found: set[tuple[str, int]] = set()
    totals = {"frames_decoded": 0, "frames_detected": 0, "faces": 0, "tracks": 0, "short": 0}
    for video in videos:
        tracks, counts = track_video(
            video, detector, frame_step=frame_step, max_frames=max_frames, head_margin=head_margin
        )
        for name, value in counts.items():
            totals[name] += value
        totals["tracks"] += len(tracks)
        kept = 0
        for track_id, track in tracks.items():
            found.add((video.name, track_id))
            if len(track.frame_numbers) < min_frames:
                totals["short"] += 1
                continue
            name = f"{video.stem}-t{track_id}"
            row = rows.get((video.name, track_id))
            tracklets.append(
                Tracklet(
                    subject=row.subject if row else name,
                    sequence=name,
                    frames=(video,) * len(track.frame_numbers),
                    labels=dict(row.labels) if row else {},
                    crop="full",
                    boxes=tuple(track.boxes),
                    frame_numbers=tuple(track.frame_numbers),
                    source=source,
                )
            )
            kept += 1
            log.debug(
                "%s: track %d, %d frames from frame %d",
                video.name,
                track_id,
                len(track.frame_numbers),
                track.frame_numbers[0],
            )
        log.info(
            "%s: %d frames decoded, %d detected, %d faces, %d tracks, %d kept",
            video,
            counts["frames_decoded"],
            counts["frames_detected"],
            counts["faces"],
            len(tracks),
            kept,
        )
    for (video_name, track_id), row in rows.items():
        if (video_name, track_id) not in found:
            raise LabelsFileError(
                f"{video_name} has no track {track_id} (with these detector settings)",
                csv_path,
                field="track",
                line=row.line,
            )
    if totals["short"]:
        log.info("%s: left out %d tracks shorter than %d frames", path, totals["short"], min_frames)
    if not tracklets:
        raise EmptySequenceError(
            f"no face track of at least {min_frames} frames in {len(videos)} video(s) "
            f"({totals['faces']} faces detected in {totals['frames_detected']} frames)",
            path,
        )
    log.info(
        "%s: %d videos, %d frames decoded, %d subjects, %d tracklets, %d frames",
        path,
        len(videos),
        totals["frames_decoded"],
        len({t.subject for t in tracklets}),
        len(tracklets),
        sum(len(t) for t in tracklets),
    )
    return tracklets
