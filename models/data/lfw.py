"""LFW: ``<images>/<Person>/<Person>_NNNN.jpg`` plus an optional gender CSV.

``root`` is either the images folder or a folder holding ``lfw-deepfunneled`` (the variant at
hand: deep-funneled, central 160x160 of the 250x250 originals, resized to 96x96; faces framed
like a head ROI, so the crop is the whole image). Each image is a one-frame sequence
(``"0001"``) of its person. LFW is the framing reference of the face datasets here: median
eye distance 27% of the crop width, eyes 42% down (YuNet on 300 random images).

The gender CSV has exactly the columns ``path,identity,gender`` (``path`` relative to the
images folder); ``M`` is male, ``F`` female; ``both`` or an empty cell is unknown.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ._common import check_frames, list_dirs, list_images, read_csv_rows, require_dir
from .errors import DatasetLayoutError, EmptySequenceError, LabelsFileError
from .labels import class_index
from .tracklet import Tracklet

__all__ = ["load_lfw"]

log = logging.getLogger(__name__)

_GENDER_COLUMNS = ["path", "identity", "gender"]
_GENDER_CODES = {"m": "male", "f": "female", "": None, "both": None}


def load_lfw(
    root: str | Path, gender_csv: str | Path | None = None, *, check_images: bool = True
) -> list[Tracklet]:
    """Load LFW: one subject per person folder, one one-frame sequence per image.

    Raises:
        DatasetLayoutError: missing folder, stray file, or an image not named
            ``<Person>_NNNN.jpg`` after its folder.
        EmptySequenceError: a person folder without images.
        ImageReadError: an empty or non-image file (``check_images``).
        LabelsFileError: the gender CSV has other columns, a row for an image that is not in the
            folder, an identity that is not the folder, an unknown gender code, a duplicate row.
    """
    root = require_dir(Path(root), "LFW root")
    images_root = root / "lfw-deepfunneled" if (root / "lfw-deepfunneled").is_dir() else root
    genders = _read_gender_csv(Path(gender_csv)) if gender_csv is not None else {}
    tracklets: list[Tracklet] = []
    seen: set[str] = set()
    for person_dir in list_dirs(images_root, "person"):
        person = person_dir.name
        pattern = re.compile(rf"^{re.escape(person)}_(\d{{4}})\.jpg$")
        images = list_images(person_dir, "LFW person")
        if not images:
            raise EmptySequenceError("person folder has no image", person_dir)
        if check_images:
            check_frames(images)
        for image in images:
            match = pattern.match(image.name)
            if match is None:
                raise DatasetLayoutError(f"image name is not {person}_NNNN.jpg", image)
            rel = f"{person}/{image.name}"
            seen.add(rel)
            labels = {}
            if rel in genders:
                identity, gender, _ = genders[rel]
                if identity != person:
                    raise LabelsFileError(
                        f"identity {identity!r} for an image of {person!r}",
                        gender_csv,
                        field="identity",
                        line=genders[rel][2],
                    )
                if gender is not None:
                    labels["gender"] = class_index("gender", gender)
            tracklets.append(
                Tracklet(person, match[1], (image,), labels=labels, crop="full", source="lfw")
            )
    if gender_csv is not None:
        extra = sorted(set(genders) - seen)
        if extra:
            raise LabelsFileError(
                f"row for an image not in {images_root}: {extra[0]}",
                gender_csv,
                field="path",
                line=genders[extra[0]][2],
            )
        unknown = sum(1 for t in tracklets if "gender" not in t.labels)
        log.info("%s: gender unknown for %d of %d images", gender_csv, unknown, len(tracklets))
    log.info(
        "%s: %d people, %d images", images_root, len({t.subject for t in tracklets}), len(tracklets)
    )
    return tracklets


def _read_gender_csv(path: Path) -> dict[str, tuple[str, str | None, int]]:
    header, rows = read_csv_rows(path, "gender CSV")
    if not header:
        raise LabelsFileError("empty file", path)
    if header != _GENDER_COLUMNS:
        unknown = [h for h in header if h not in _GENDER_COLUMNS]
        raise LabelsFileError(
            f"columns must be {','.join(_GENDER_COLUMNS)}, got {','.join(header)}",
            path,
            field=unknown[0] if unknown else None,
            line=1,
        )
    out: dict[str, tuple[str, str | None, int]] = {}
    for line_no, row in rows:
        rel, identity, code = (c.strip() for c in row)
        if code.lower() not in _GENDER_CODES:
            raise LabelsFileError(
                f"unknown gender code {code!r} (M, F, both, empty)",
                path,
                field="gender",
                line=line_no,
            )
        if rel in out:
            raise LabelsFileError(f"duplicate row for {rel}", path, field="path", line=line_no)
        out[rel] = (identity, _GENDER_CODES[code.lower()], line_no)
    return out
