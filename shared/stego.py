"""LSB steganography on RGB frames, bit-compatible with ``stegano.lsb``.

Format (the one ``stegano.lsb.hide`` writes and ``stegano.lsb.reveal`` reads):

* payload  = ASCII decimal byte length ``N`` of the message, ``":"``, then the message's
  UTF-8 bytes (``"<N>:" + message``);
* the payload's bits, most significant bit of each byte first, are zero-padded to a
  multiple of 3 and written into the least significant bit of the R, G and B samples of
  consecutive pixels in raster order (row by row, left to right), three bits per pixel;
* every other pixel, and every other bit of the touched pixels, is left as it was.

Frames are ``H x W x 3`` ``uint8`` arrays in RGB order (what PyAV's ``rgb24`` gives). An
``H x W x 4`` RGBA frame is accepted too (alpha is never touched), as stegano does.

This module is vectorised numpy: it touches only the first ``ceil(8 * len(payload) / 3)``
pixels, so embedding a short message in a 1080p frame costs microseconds.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MessageTooLargeError",
    "NoMessageError",
    "StegoError",
    "capacity",
    "embed",
    "extract",
]

_MAX_LENGTH_DIGITS = 10  # a length prefix above 9,999,999,999 bytes is never valid
_SEPARATOR = ord(":")


class StegoError(ValueError):
    """Base class of the errors this module raises."""


class MessageTooLargeError(StegoError):
    """The message does not fit in the frame's least significant bits."""


class NoMessageError(StegoError):
    """The frame carries no valid LSB message (no length prefix, truncated, or not UTF-8)."""


def _channels(frame: np.ndarray) -> int:
    """Return the number of colour samples used per pixel (always 3), validating ``frame``.

    Raises:
        TypeError: ``frame`` is not a numpy ``uint8`` array.
        ValueError: ``frame`` is not ``H x W x 3`` or ``H x W x 4`` with ``H, W >= 1``.
    """
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise TypeError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"frame must be HxWx3 (RGB) or HxWx4 (RGBA), got shape {frame.shape}")
    return 3


def _payload(message: str) -> bytes:
    body = message.encode("utf-8")
    return str(len(body)).encode("ascii") + b":" + body


def _payload_bits(message: str) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(_payload(message), dtype=np.uint8))
    pad = (-bits.size) % 3
    if pad:
        bits = np.concatenate([bits, np.zeros(pad, dtype=np.uint8)])
    return bits


def capacity(shape: tuple[int, ...]) -> int:
    """Return the largest message, in UTF-8 bytes, that fits in a frame of ``shape`` (0: none).

    Raises:
        ValueError: ``shape`` is not ``(H, W, 3)`` or ``(H, W, 4)`` with positive sizes.
    """
    if len(shape) != 3 or shape[2] not in (3, 4) or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"shape must be (H, W, 3) or (H, W, 4), got {shape}")
    # A payload of b bytes fits iff 3 * ceil(8b / 3) <= 3HW, i.e. iff 8b <= 3HW.
    payload_bytes = int(shape[0]) * int(shape[1]) * 3 // 8
    size = payload_bytes - 2
    while size > 0 and len(str(size)) + 1 + size > payload_bytes:
        size -= 1
    return max(size, 0)


def embed(frame: np.ndarray, message: str, *, inplace: bool = False) -> np.ndarray:
    """Hide ``message`` in the least significant bits of ``frame`` (stegano's LSB format).

    Args:
        frame: ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA) ``uint8`` array.
        message: non-empty text; stored as UTF-8.
        inplace: write into ``frame`` itself instead of a copy.

    Returns:
        The frame carrying the message (``frame`` itself when ``inplace``).

    Raises:
        TypeError: ``frame`` is not a ``uint8`` numpy array.
        ValueError: wrong frame shape, or an empty message (stegano refuses those too).
        MessageTooLargeError: the message does not fit in the frame.
    """
    _channels(frame)
    if not isinstance(message, str):
        raise TypeError(f"message must be str, got {type(message).__name__}")
    if not message:
        raise ValueError("message must not be empty")
    bits = _payload_bits(message)
    height, width, depth = frame.shape
    if bits.size > height * width * 3:
        raise MessageTooLargeError(
            f"message of {len(message.encode('utf-8'))} bytes does not fit in a "
            f"{width}x{height} frame (capacity {capacity(frame.shape)} bytes)"
        )
    out = frame if inplace else frame.copy()
    n_pixels = bits.size // 3
    rows = -(-n_pixels // width)
    block = np.ascontiguousarray(out[:rows])  # a view unless ``out`` is strided
    samples = block.reshape(-1, depth)[:n_pixels, :3]
    samples[...] = (samples & 0xFE) | bits.reshape(-1, 3)
    if not np.shares_memory(block, out):
        out[:rows] = block
    return out


def _lsb_bytes(frame: np.ndarray, start_byte: int, n_bytes: int) -> bytes:
    """Read ``n_bytes`` payload bytes starting at payload byte ``start_byte``."""
    depth = frame.shape[2]
    width = frame.shape[1]
    first_bit = start_byte * 8
    last_bit = (start_byte + n_bytes) * 8
    first_pixel = first_bit // 3
    last_pixel = -(-last_bit // 3)
    row0, row1 = first_pixel // width, -(-last_pixel // width)
    samples = frame[row0:row1].reshape(-1, depth)[:, :3]
    offset = first_pixel - row0 * width
    bits = samples[offset : offset + (last_pixel - first_pixel)].reshape(-1) & 1
    skip = first_bit - first_pixel * 3
    return np.packbits(bits[skip : skip + n_bytes * 8]).tobytes()


def extract(frame: np.ndarray) -> str:
    """Return the message hidden in ``frame`` by :func:`embed` or ``stegano.lsb.hide``.

    Raises:
        TypeError: ``frame`` is not a ``uint8`` numpy array.
        ValueError: wrong frame shape.
        NoMessageError: no ``"<N>:"`` length prefix, a length beyond the frame's capacity,
            or a body that is not valid UTF-8.
    """
    _channels(frame)
    total_bytes = frame.shape[0] * frame.shape[1] * 3 // 8
    head = _lsb_bytes(frame, 0, min(_MAX_LENGTH_DIGITS + 1, total_bytes))
    sep = head.find(b":")
    if sep < 0:
        raise NoMessageError("no LSB message: no '<length>:' prefix at the start of the frame")
    digits = head[:sep]
    if not digits or not all(48 <= c <= 57 for c in digits):
        raise NoMessageError(f"no LSB message: length prefix {digits!r} is not a decimal number")
    length = int(digits)
    if sep + 1 + length > total_bytes:
        raise NoMessageError(
            f"no LSB message: declared length {length} bytes exceeds what the "
            f"{frame.shape[1]}x{frame.shape[0]} frame can hold"
        )
    body = _lsb_bytes(frame, sep + 1, length)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoMessageError(f"no LSB message: body of {length} bytes is not UTF-8") from exc
