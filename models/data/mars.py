"""MARS: ``bbox_train/<pid>/<pid>C<cam>T<tracklet>F<frame>.jpg`` (and ``bbox_test``).

MARS ships 256x128 pedestrian crops from a detector + tracker, one folder per identity (``0001``
...). A file name is the identity, the camera (``C1``-``C6``), the tracklet number within that
camera (``T0001``) and the frame number (``F001``). Here:

* subject = the identity folder name (``"0001"``); train and test identities are disjoint, so an
  identity present in both splits is an error;
* sequence = camera + tracklet (``"C1T0001"``), frames ordered by frame number;
* crop = :class:`~models.data.crops.HeadTop` (the head is the top of the pedestrian box);
* identities ``0000`` (distractors: false detections) and ``00-1`` (junk boxes) are not
  people: they are left out unless ``include_distractors`` (the count is logged).

MARS has no soft labels of its own; pass ``labels_csv`` (``subject[,sequence],<label>,...``, see
:func:`models.data.tracklet_folder.load_tracklet_folder`) to add gender/ethnicity/hairstyle.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

from ._common import check_frames, list_dirs, list_images, require_dir
from .crops import CropRule, HeadTop
from .errors import DatasetLayoutError, EmptySequenceError
from .tracklet import Tracklet
from .tracklet_folder import apply_labels_csv

__all__ = ["MARS_SPLITS", "load_mars"]

log = logging.getLogger(__name__)

MARS_SPLITS = ("bbox_train", "bbox_test")
_PID_DIR = re.compile(r"^(\d{4}|00-1)$")
_FRAME = re.compile(r"^(?P<pid>\d{4}|00-1)C(?P<cam>\d+)T(?P<track>\d+)F(?P<frame>\d+)\.jpg$")
_DISTRACTORS = frozenset({"0000", "00-1"})


def load_mars(
    root: str | Path,
    *,
    splits: tuple[str, ...] | None = None,
    include_distractors: bool = False,
    labels_csv: str | Path | None = None,
    crop: CropRule | None = None,
    check_images: bool = True,
) -> list[Tracklet]:
    """Load MARS tracklets from ``root`` (the folder holding ``bbox_train``/``bbox_test``).

    Args:
        splits: which split folders to read; ``None`` reads those present (at least one).
        include_distractors: also load identities ``0000`` and ``00-1`` (not real people).
        labels_csv: optional soft labels per identity (or per ``C<c>T<t>`` sequence).
        crop: head rule (default :class:`HeadTop` with its documented geometry).
        check_images: check every frame's image signature (no decoding).

    Raises:
        DatasetLayoutError: no split folder, an unknown split name, an identity folder or a file
            name not in MARS form, a file whose identity differs from its folder, a duplicate
            frame number in a tracklet, or an identity in two splits.
        EmptySequenceError: an identity folder without images.
        ImageReadError: an empty or non-image frame file (``check_images``).
        LabelsFileError: bad labels CSV.
    """
    root = require_dir(Path(root), "MARS root")
    if splits is None:
        splits = tuple(s for s in MARS_SPLITS if (root / s).is_dir())
        if not splits:
            raise DatasetLayoutError(f"no MARS split folder ({' or '.join(MARS_SPLITS)})", root)
    rule = crop if crop is not None else HeadTop()
    tracklets: list[Tracklet] = []
    split_of: dict[str, str] = {}
    skipped = 0
    for split in splits:
        if split not in MARS_SPLITS:
            raise DatasetLayoutError(f"unknown MARS split {split!r} (known: {MARS_SPLITS})", root)
        for pid_dir in list_dirs(require_dir(root / split, "MARS split"), "identity"):
            pid = pid_dir.name
            if not _PID_DIR.match(pid):
                raise DatasetLayoutError("identity folder name is not 4 digits (or 00-1)", pid_dir)
            images = list_images(pid_dir, "MARS identity")
            if pid in _DISTRACTORS and not include_distractors:
                skipped += len(images)
                continue
            if pid in split_of:
                raise DatasetLayoutError(f"identity {pid} also appears in {split_of[pid]}", pid_dir)
            split_of[pid] = split
            tracklets.extend(_identity_tracklets(pid_dir, pid, images, rule, check_images))
    if skipped:
        log.info("%s: left out %d distractor/junk images (identities 0000, 00-1)", root, skipped)
    if labels_csv is not None:
        tracklets = apply_labels_csv(tracklets, Path(labels_csv))
    log.info("%s: %d identities, %d tracklets", root, len(split_of), len(tracklets))
    return tracklets


def _identity_tracklets(
    pid_dir: Path, pid: str, images: list[Path], rule: CropRule, check_images: bool
) -> list[Tracklet]:
    if not images:
        raise EmptySequenceError("identity folder has no image", pid_dir)
    by_sequence: dict[str, dict[int, Path]] = defaultdict(dict)
    for path in images:
        match = _FRAME.match(path.name)
        if match is None:
            raise DatasetLayoutError("file name is not <pid>C<cam>T<tracklet>F<frame>.jpg", path)
        if match["pid"] != pid:
            raise DatasetLayoutError(f"file of identity {match['pid']} in folder {pid}", path)
        sequence = f"C{int(match['cam'])}T{match['track']}"
        frame = int(match["frame"])
        if frame in by_sequence[sequence]:
            raise DatasetLayoutError(
                f"frame {frame} of tracklet {sequence} appears twice (also "
                f"{by_sequence[sequence][frame].name})",
                path,
            )
        by_sequence[sequence][frame] = path
    out = []
    for sequence in sorted(by_sequence):
        frames = [by_sequence[sequence][f] for f in sorted(by_sequence[sequence])]
        if check_images:
            check_frames(frames)
        out.append(Tracklet(pid, sequence, tuple(frames), crop=rule, source="mars"))
    return out
