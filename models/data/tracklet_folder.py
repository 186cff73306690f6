"""A plain folder of tracklets: ``<root>/<subject>/<sequence>/<frame>.jpg`` (+ labels CSV).

Frames are JPEG/PNG/BMP/WebP files, in natural name order (``2.jpg`` before ``10.jpg``). The
optional CSV (see :func:`models.data._common.read_labels_csv`) has a header
``subject,<label>,...`` (one row per subject) or ``subject,sequence,<label>,...`` (one row per
sequence). Frames are taken whole (crop ``"full"``) unless another rule is given: a folder of
head crops is the expected input.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ._common import check_frames, list_dirs, list_images, read_labels_csv, require_dir
from .crops import CropSpec
from .errors import EmptySequenceError
from .tracklet import Tracklet

__all__ = ["load_tracklet_folder"]

log = logging.getLogger(__name__)


def load_tracklet_folder(
    root: str | Path,
    labels_csv: str | Path | None = None,
    *,
    crop: CropSpec = "full",
    source: str = "custom",
    check_images: bool = True,
    vocabularies: Mapping[str, tuple[str, ...]] | None = None,
) -> list[Tracklet]:
    """Load every ``<subject>/<sequence>/`` folder of ``root`` as a tracklet.

    Args:
        root: the folder of subject folders.
        labels_csv: optional labels file (may live outside ``root``; a file inside ``root`` is
            a layout error, since only subject folders belong there).
        crop: how to cut the head out of each frame (default: whole frame).
        source: the dataset key written into the tracklets (and packs).
        check_images: check every frame's signature (cheap; no decoding).
        vocabularies: extra label vocabularies for custom label columns.

    Raises:
        DatasetLayoutError: ``root`` missing, a file where a subject/sequence folder belongs, a
            non-image file or a sub-folder among the frames.
        EmptySequenceError: a sequence folder without frames, or a subject without sequences.
        ImageReadError: a frame file is empty or not an image (``check_images``).
        LabelsFileError: see :func:`models.data._common.read_labels_csv`; also a row naming a
            subject or sequence that is not in the folder.
    """
    root = require_dir(Path(root), "tracklet root")
    tracklets: list[Tracklet] = []
    for subject_dir in list_dirs(root, "subject"):
        sequence_dirs = [p for p in subject_dir.iterdir() if not p.name.startswith(".")]
        if not sequence_dirs:
            raise EmptySequenceError("subject folder has no sequence folder", subject_dir)
        for sequence_dir in list_dirs(subject_dir, "sequence"):
            frames = list_images(sequence_dir, "sequence")
            if not frames:
                raise EmptySequenceError("sequence folder has no frame", sequence_dir)
            if check_images:
                check_frames(frames)
            tracklets.append(
                Tracklet(
                    subject=subject_dir.name,
                    sequence=sequence_dir.name,
                    frames=tuple(frames),
                    crop=crop,
                    source=source,
                )
            )
    if labels_csv is not None:
        tracklets = apply_labels_csv(tracklets, Path(labels_csv), vocabularies)
    log.info(
        "%s: %d subjects, %d sequences", root, len({t.subject for t in tracklets}), len(tracklets)
    )
    return tracklets


def apply_labels_csv(
    tracklets: list[Tracklet],
    labels_csv: Path,
    vocabularies: Mapping[str, tuple[str, ...]] | None = None,
) -> list[Tracklet]:
    """Return copies of ``tracklets`` with the CSV's labels merged in (CSV values win).

    Raises:
        LabelsFileError: as :func:`models.data._common.read_labels_csv`, or a row naming a
            subject/sequence not among ``tracklets``.
    """
    table = read_labels_csv(labels_csv, vocabularies)
    table.check_keys({(t.subject, t.sequence) for t in tracklets})
    out = []
    for t in tracklets:
        labels = {**t.labels, **table.labels_for(t.subject, t.sequence)}
        out.append(
            Tracklet(
                subject=t.subject,
                sequence=t.sequence,
                frames=t.frames,
                labels=labels,
                crop=t.crop,
                boxes=t.boxes,
                frame_numbers=t.frame_numbers,
                source=t.source,
            )
        )
    return out
