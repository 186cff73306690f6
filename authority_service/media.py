"""What an upload is: a readable video (and how long), or a PNG frame; typed errors otherwise.

A file that fails to open is a *corrupt* video (422) when it starts like a video container
(Matroska/WebM, MP4/MOV, MPEG-TS, AVI) and *not a video* (415) otherwise, so a truncated MP4 (whose
index is missing) is reported as what it is.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from authority_service.errors import CorruptVideoError, NotAVideoError, UnsupportedImageError
from shared.video_io import VideoDecodeError, VideoInfo, probe

__all__ = [
    "PNG_SIGNATURE",
    "decode_png",
    "encode_png",
    "expected_frames",
    "inspect_clip",
    "looks_like_video",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_FRAME_PIXELS = 8192 * 8192


def looks_like_video(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts like a video container."""
    return (
        head.startswith(b"\x1a\x45\xdf\xa3")  # EBML: Matroska / WebM
        or head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")  # ISO BMFF / QuickTime
        or (len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47)  # MPEG-TS sync bytes
        or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
    )


def inspect_clip(path: Path) -> VideoInfo:
    """Probe an uploaded clip.

    Raises:
        NotAVideoError: the file is not a video container.
        CorruptVideoError: it starts like one but cannot be opened (truncated, damaged).
    """
    problem: str | None = None
    cause: VideoDecodeError | None = None
    try:
        info = probe(path)
    except VideoDecodeError as exc:
        problem, cause = str(exc), exc
    else:
        if info.width >= 1 and info.height >= 1:
            return info
        problem = f"its {info.codec} stream has no frame size"
    with open(path, "rb") as handle:
        head = handle.read(512)
    if looks_like_video(head):
        raise CorruptVideoError(
            f"the clip is a video container but cannot be read (truncated or damaged): {problem}"
        ) from cause
    raise NotAVideoError(f"the upload is not a video this service can read: {problem}") from cause


def expected_frames(info: VideoInfo) -> int | None:
    """How many frames the container declares (frame count, else duration x rate)."""
    if info.frames:
        return info.frames
    if info.duration and info.fps:
        return round(info.duration * float(info.fps))
    return None


def decode_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit RGB or RGBA PNG to ``H x W x 3`` RGB (alpha dropped; LSBs kept).

    Raises:
        UnsupportedImageError: not a PNG, corrupt, grey, palette, 16-bit, or too large.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise UnsupportedImageError("the frame must be a PNG (the signature is missing)")
    # Check the header before decoding, so a huge declared size allocates nothing.
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise UnsupportedImageError("the PNG has no IHDR header (truncated or corrupt)")
    width, height = struct.unpack(">II", data[16:24])
    bit_depth, colour_type = data[24], data[25]
    if width * height > MAX_FRAME_PIXELS or not width or not height:
        raise UnsupportedImageError(f"the frame size {width}x{height} is not acceptable")
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
