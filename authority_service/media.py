"""What an upload is: a readable video (and how long), or a PNG frame; typed errors otherwise.

A file that fails to open is a *corrupt* video (422) when it starts like a video container
(Matroska/WebM, MP4/MOV, MPEG-TS, AVI) and *not a video* (415) otherwise, so a truncated MP4 (whose
index is missing) is reported as what it is. A clip or frame with a side under
:data:`MIN_FRAME_SIDE` pixels is refused (``unsupported_frame_size``, 422). The errors' details
go to the client, so they never quote the file's path or FFmpeg; the cause is logged.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import cv2
import numpy as np

from authority_service.errors import (
    CorruptVideoError,
    NotAVideoError,
    UnsupportedFrameSizeError,
    UnsupportedImageError,
)
from shared.video_io import VideoDecodeError, VideoInfo, probe

__all__ = [
    "MIN_FRAME_SIDE",
    "PNG_SIGNATURE",
    "check_frame_size",
    "decode_png",
    "encode_png",
    "inspect_clip",
    "looks_like_video",
]

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_FRAME_PIXELS = 8192 * 8192
#: The smallest width and height reversed. A smaller frame cannot carry a v1 message with a box
#: in its LSBs (about 70 bytes; a 16x16 frame holds 93), and FFV1, the result codec of odd
#: sizes, cannot encode a side of 1 pixel at all.
MIN_FRAME_SIDE = 16


def check_frame_size(width: int, height: int) -> None:
    """Refuse a frame size under :data:`MIN_FRAME_SIDE` on either side.

    Raises:
        UnsupportedFrameSizeError: too small (its ``width``, ``height`` and ``min_side`` named).
    """
    if width < MIN_FRAME_SIDE or height < MIN_FRAME_SIDE:
        raise UnsupportedFrameSizeError(
            f"the frames are {width}x{height} pixels; at least {MIN_FRAME_SIDE}x{MIN_FRAME_SIDE} "
            "is needed to carry a signed ROI message",
            width=width,
            height=height,
            min_side=MIN_FRAME_SIDE,
        )


def looks_like_video(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts like a video container."""
    return (
        head.startswith(b"\x1a\x45\xdf\xa3")  # EBML: Matroska / WebM
        or head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")  # ISO BMFF / QuickTime
        or (len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47)  # MPEG-TS sync bytes
        or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
    )


def inspect_clip(path: Path) -> VideoInfo:
    """Probe an uploaded clip; why it cannot be read is logged, not put in the error.

    Raises:
        NotAVideoError: the file is not a video container.
        CorruptVideoError: it starts like one but cannot be opened (truncated, damaged).
        UnsupportedFrameSizeError: its frames are under :data:`MIN_FRAME_SIDE` on a side.
    """
    problem: str | None = None
    cause: VideoDecodeError | None = None
    try:
        info = probe(path)
    except VideoDecodeError as exc:
        problem, cause = str(exc), exc
    else:
        if info.width >= 1 and info.height >= 1:
            check_frame_size(info.width, info.height)
            return info
        problem = f"its {info.codec} stream has no frame size"
    with open(path, "rb") as handle:
        head = handle.read(512)
    log.warning("clip %s cannot be read: %s", path.name, problem)
    if looks_like_video(head):
        raise CorruptVideoError(
            "the clip is a video container but cannot be read (truncated or damaged)"
        ) from cause
    raise NotAVideoError("the upload is not a video this service can read") from cause


def decode_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit RGB or RGBA PNG to ``H x W x 3`` RGB (alpha dropped; LSBs kept).

    Raises:
        UnsupportedImageError: not a PNG, corrupt, grey, palette, 16-bit, or too large.
        UnsupportedFrameSizeError: a side under :data:`MIN_FRAME_SIDE` pixels.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise UnsupportedImageError("the frame must be a PNG (the signature is missing)")
    # Check the header before decoding, so a huge declared size allocates nothing.
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise UnsupportedImageError("the PNG has no IHDR header (truncated or corrupt)")
    width, height = struct.unpack(">II", data[16:24])
    bit_depth, colour_type = data[24], data[25]
    if width * height > MAX_FRAME_PIXELS:
        raise UnsupportedImageError(f"the frame size {width}x{height} is not acceptable")
    check_frame_size(width, height)
    if bit_depth != 8 or colour_type not in (2, 6):
        raise UnsupportedImageError(
            f"the PNG must be 8-bit RGB or RGBA (got bit depth {bit_depth}, colour type "
            f"{colour_type}): the ROI message lives in the R, G and B samples"
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UnsupportedImageError("the PNG cannot be decoded (truncated or corrupt)")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise UnsupportedImageError(f"the PNG decoded to {image.shape} {image.dtype}, not RGB(A)")
    code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


def encode_png(rgb: np.ndarray) -> bytes:
    """Encode an ``H x W x 3`` RGB frame as a (lossless) PNG.

    Raises:
        ValueError: OpenCV could not encode it.
    """
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buffer.tobytes()
