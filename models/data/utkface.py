"""UTKFace (aligned and cropped): ``<age>_<gender>_<race>_<datetime>.jpg.chip.jpg``.

Labels come from the file name: gender 0 male, 1 female; race 0 White, 1 Black, 2 Asian,
3 Indian, 4 Others -> ``ethnicity`` white/black/asian/indian/other. A few published names lack
the race field (``<age>_<gender>_<datetime>...``): race is then unknown (counted, logged); any
other name is an error. The published names have a few quirks that are accepted: a date of
14-18 digits (17 is usual) and one name missing the dot before ``jpg``. UTKFace has no
identities: each image is its own subject (one one-frame sequence ``"0"``). ``root`` is the
images folder or a folder holding ``UTKFace``.

The crops are tight (face ~83% of the width, against ~60% in LFW): there is no margin to widen
them, so they are used whole and their faces are larger than the other sets' in a pack.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ._common import check_frames, list_images, require_dir
from .errors import DatasetLayoutError, EmptySequenceError
from .labels import VOCABULARIES
from .tracklet import Tracklet

__all__ = ["load_utkface"]

log = logging.getLogger(__name__)

_NAME = re.compile(
    r"^(?P<age>\d{1,3})_(?P<gender>\d)_(?:(?P<race>\d)_)?(?P<date>\d{14,18})\.?jpg(?:\.chip\.jpg)?$"
)


def load_utkface(root: str | Path, *, check_images: bool = True) -> list[Tracklet]:
    """Load UTKFace: every image is a subject of its own with gender and ethnicity labels.

    Raises:
        DatasetLayoutError: missing folder, a sub-folder or non-image file, a name not in the
            UTKFace form, or a gender/race code out of range.
        EmptySequenceError: no image at all.
        ImageReadError: an empty or non-image file (``check_images``).
    """
    root = require_dir(Path(root), "UTKFace root")
    images_root = root / "UTKFace" if (root / "UTKFace").is_dir() else root
    images = list_images(images_root, "UTKFace")
    if not images:
        raise EmptySequenceError("no image", images_root)
    if check_images:
        check_frames(images)
    tracklets = []
    no_race = 0
    for image in images:
        match = _NAME.match(image.name)
        if match is None:
            raise DatasetLayoutError(
                "name is not <age>_<gender>_<race>_<datetime>.jpg[.chip.jpg]", image
            )
        gender = int(match["gender"])
        if gender > 1:
            raise DatasetLayoutError(f"gender code {gender} (0 male, 1 female)", image)
        labels = {"gender": gender}
        if match["race"] is None:
            no_race += 1
        else:
            race = int(match["race"])
            if race >= len(VOCABULARIES["ethnicity"]):
                raise DatasetLayoutError(f"race code {race} (0-4)", image)
            labels["ethnicity"] = race
        subject = image.name.split(".")[0]
        tracklets.append(
            Tracklet(subject, "0", (image,), labels=labels, crop="full", source="utkface")
        )
    if no_race:
        log.info("%s: race unknown for %d images (name without race field)", images_root, no_race)
    log.info("%s: %d images", images_root, len(tracklets))
    return tracklets
