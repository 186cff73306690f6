"""Reading frames strictly: image files and frames of video files, as RGB ``uint8``.

Loaders call :func:`check_image_file` on every frame they list (existence, non-empty, a known
image signature: cheap, no decoding); the packer decodes with :func:`read_rgb` and
:class:`VideoFrameSource`, counting what fails against a threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from .errors import ImageReadError

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "check_image_file",
    "read_rgb",
    "read_video_frames",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
#: Video files the loaders list (any case).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"RIFF", "webp"),
)


def check_image_file(path: Path) -> None:
    """Check that ``path`` exists, is not empty and starts like a JPEG/PNG/BMP/WebP file.

    Raises:
        ImageReadError: missing, empty, or not an image of a known format.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except FileNotFoundError:
        raise ImageReadError("image file not found", path) from None
    except OSError as exc:
        raise ImageReadError(f"cannot open image: {exc}", path) from exc
    if not head:
        raise ImageReadError("image file is empty", path)
    for magic, _ in _SIGNATURES:
        if head.startswith(magic):
            if magic == b"RIFF" and head[8:12] != b"WEBP":
                break
            return
    raise ImageReadError("not a JPEG, PNG, BMP or WebP image (bad signature)", path)


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file as ``H x W x 3`` RGB ``uint8`` (grey images are expanded).

    Raises:
        ImageReadError: missing, unreadable or undecodable file.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError("image file not found", path) from None
    except OSError as exc:
        raise ImageReadError(f"cannot read image: {exc}", path) from exc
    if data.size == 0:
        raise ImageReadError("image file is empty", path)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ImageReadError("image cannot be decoded (corrupt or unknown format)", path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_video_frames(path: Path, wanted: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ``path`` once, front to back, yielding ``(index, rgb)`` for the wanted indices.

    Indices are 0-based decode order. Decoding stops after the last wanted frame.

    Raises:
        ImageReadError: the video is missing/unreadable, or ends before a wanted frame (the
            message names the first missing index).
    """
    # Imported here: PyAV is needed only for video sources (P-DESTRE).
    from shared.video_io import VideoDecodeError, read_frames

    targets = sorted(set(int(i) for i in wanted))
    if not targets:
        return
    position = 0
    frames = read_frames(path)
    try:
        for frame in frames:
            if frame.index == targets[position]:
                yield frame.index, frame.rgb
                position += 1
                if position == len(targets):
                    return
    except VideoDecodeError as exc:
        raise ImageReadError(str(exc), path) from exc
    finally:
        frames.close()
    raise ImageReadError(
        f"video ends before frame {targets[position]} ({len(targets) - position} wanted frames "
        "missing)",
        path,
    )
