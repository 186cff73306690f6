"""Reading the evaluation media: identity folders, VOC-style ground-truth box files, videos.

Layouts (those of ``../shared/media``):

* identity folder: ``<root>/<identity>/<image>`` (``.jpg .jpeg .png .pgm .bmp .webp``), one
  folder per person (ORL ``sNN/``, faceapi_bbt, face_recognition, LFW ``<Person>/``);
* dlib/VOC box file: ``<images>/<file>.xml`` with ``<image file=...><box top left width
  height/>`` elements (``images/dlib_faces/testing.xml``);
* videos: ``*.mp4 *.mkv *.avi *.mov`` under ``<media>/videos``.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.evaluation.errors import EvaluationError
from shared.geometry import Box, clip_box

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "BoxedImage",
    "list_identity_images",
    "list_videos",
    "load_box_file",
    "read_rgb",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".pgm", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")


@dataclass(frozen=True)
class BoxedImage:
    """An image file and its ground-truth face boxes."""

    path: Path
    boxes: tuple[Box, ...]


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as ``H x W x 3`` uint8 RGB (grey images are replicated to 3 channels).

    Raises:
        EvaluationError: missing file or not a decodable image.
    """
    path = Path(path)
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise EvaluationError(f"{path}: missing or not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def list_identity_images(
    root: str | Path, *, min_images: int = 1, max_per_identity: int | None = None
) -> dict[str, list[Path]]:
    """Image files per identity of an identity folder, sorted by name.

    Identities with fewer than ``min_images`` images are left out (logged).

    Raises:
        EvaluationError: the folder is missing or holds no identity folder with images.
    """
    root = Path(root)
    if not root.is_dir():
        raise EvaluationError(f"identity folder not found: {root}")
    found: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if max_per_identity is not None:
            files = files[:max_per_identity]
        if len(files) < min_images:
            log.info("%s: %d image(s), fewer than %d: left out", folder, len(files), min_images)
            continue
        found[folder.name] = files
    if not found:
        raise EvaluationError(
            f"{root}: no <identity>/<image> folders with >= {min_images} image(s) "
            f"(expected e.g. {root}/<person>/001.jpg)"
        )
    return found


def load_box_file(path: str | Path) -> list[BoxedImage]:
    """Parse a dlib/VOC ``<dataset><images><image file=...><box .../>`` file; image paths are
    relative to the file's folder. Boxes marked ``ignore='1'`` are left out.

    Raises:
        EvaluationError: missing or malformed file, a box without its four integer fields.
    """
    path = Path(path)
    try:
        tree = ElementTree.parse(path)
    except (OSError, ElementTree.ParseError) as exc:
        raise EvaluationError(f"{path}: cannot read box file: {exc}") from exc
    images = []
    for element in tree.getroot().iter("image"):
        name = element.get("file")
        if not name:
            raise EvaluationError(f"{path}: an <image> without a file attribute")
        boxes = []
        for box in element.iter("box"):
            if box.get("ignore") == "1":
                continue
            try:
                left, top = int(box.get("left", "")), int(box.get("top", ""))
                width, height = int(box.get("width", "")), int(box.get("height", ""))
            except ValueError as exc:
                raise EvaluationError(f"{path}: {name}: box with a missing field: {exc}") from exc
            boxes.append((left, top, width, height))
        image_path = path.parent / name
        size = (int(element.get("width", 0) or 0), int(element.get("height", 0) or 0))
        clipped = []
        for left, top, width, height in boxes:
            limit_w = size[0] or 10**9
            limit_h = size[1] or 10**9
            box = clip_box(left, top, left + width, top + height, limit_w, limit_h)
            if box is not None:
                clipped.append(box)
        images.append(BoxedImage(image_path, tuple(clipped)))
    if not images:
        raise EvaluationError(f"{path}: no <image> entries")
    return images


def list_videos(folder: str | Path, predicate: Callable[[Path], bool] | None = None) -> list[Path]:
    """Video files directly in ``folder`` (sorted); an absent folder gives an empty list."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    videos = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
    )
    return [v for v in videos if predicate is None or predicate(v)]
