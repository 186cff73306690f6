"""The ROI message hidden in every public frame: the paper's format and the versioned v1 extension.

Grammar (ABNF, RFC 5234; no whitespace anywhere)
-----------------------------------------------
The paper's message, exactly as in Proença's UU-Net (example ``2,10,16,9,15,25,45,8,14,``)::

    paper    = count "," *box            ; exactly `count` boxes follow
    box      = x "," y "," w "," h ","   ; top-left corner, width, height in pixels
    count    = nat
    x = nat ; y = nat ; w = pos ; h = pos
    nat      = "0" / pos
    pos      = %x31-39 *8DIGIT           ; no sign, no leading zero, at most 9 digits

Version 1 (``UU1``) adds who wrote the frame, with which model, which frame it is, and an
authentication tag::

    v1       = "UU1|" camera "|" model "|" frame "|" paper "|" [sealed "|"] tag
    camera   = 1*64 idchar               ; the camera's id (selects its key at the authority)
    model    = 1*64 idchar               ; the id of the Ue model that made the faces
    frame    = [run "."] nat-long        ; [the run,] index of the frame in the run's stream
    run      = 16 (DIGIT / %x61-66)      ; the edge's run id: random per start, lowercase hex
    idchar   = ALPHA / DIGIT / "-" / "_" / "."
    nat-long = "0" / %x31-39 *18DIGIT
    tag      = 32 (DIGIT / %x61-66)      ; lowercase hex
    sealed   = "S1:" 1*b64url            ; the frame's sealed original faces, version 1
    b64url   = ALPHA / DIGIT / "-" / "_" ; RFC 4648 section 5, no padding

``run`` (optional; absent in every message written before it existed, which therefore parse
and verify as before) tells the edge's runs apart: the frame index restarts at 0 on every start,
so without it frame ``n`` of one run and frame ``n`` of the next were interchangeable under the
tag. It is part of the ``frame`` field, not a field of its own, because together they are the
frame's identity: the field count (and so the position of ``sealed``) stays as it was, and a
message of run A with index ``n`` is a different text, with a different tag, from run B's. It is
random (64 bits from the OS) rather than the start time, because an edge's clock can be reset or
stand still across a reboot, and two starts can fall in the same second.

``sealed`` (optional; absent in every message written before it existed, which therefore parse
as before) carries the bytes of a :mod:`shared.sealed_faces` payload: the original pixels of the
frame's replaced faces encrypted to the authority's public keys. Its version digit is its own,
so the payload can change without a new message version.

``tag`` is HMAC-SHA256 with the camera's key, truncated to its first 16 bytes, over::

    "uunet-roi-v1" NUL  <the v1 text up to and including the "|" before the tag>  NUL
    "<H>x<W>x<C>" NUL   <the frame's pixels, row-major, with every least significant bit
                         cleared>

so the tag binds the boxes, camera, model, run, frame index and sealed faces to the frame's visible
content: an edited message, an edited picture (any change above the LSB plane) or a message
moved onto another frame fails verification. The LSB plane is excluded because the message
itself lives there (see :mod:`shared.stego`).

Every box must lie inside the frame when the frame size is known, and boxes have at least one
pixel per side. Any deviation from the grammar raises :class:`RoiMessageError` (a
``ValueError``) whose ``field`` names the offending part.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shared.geometry import Box

__all__ = [
    "MAX_BOXES",
    "MIN_KEY_BYTES",
    "SEALED_PREFIX",
    "BoxOutOfFrameError",
    "MessageAuthenticationError",
    "MessageFormatError",
    "RoiMessage",
    "RoiMessageError",
    "UnknownVersionError",
    "compute_tag",
    "format_paper",
    "format_v1",
    "new_run_id",
    "parse_message",
    "parse_paper",
    "parse_v1",
    "sealed_field_length",
    "verify_v1",
]

MAX_BOXES = 4096
MIN_KEY_BYTES = 16
TAG_HEX_CHARS = 32
V1_PREFIX = "UU1|"
SEALED_PREFIX = "S1:"
_TAG_DOMAIN = b"uunet-roi-v1\x00"

_NAT = r"(?:0|[1-9][0-9]{0,8})"
_NAT_LONG = r"(?:0|[1-9][0-9]{0,18})"
_ID = r"[A-Za-z0-9._-]{1,64}"
_ID_RE = re.compile(_ID)
_NAT_RE = re.compile(_NAT)
_TAG_RE = re.compile(f"[0-9a-f]{{{TAG_HEX_CHARS}}}")
_V1_RE = re.compile(
    r"UU1\|(?P<camera>[^|]*)\|(?P<model>[^|]*)\|(?P<frame>[^|]*)\|(?P<paper>[^|]*)\|"
    r"(?:(?P<sealed>[^|]*)\|)?(?P<tag>[^|]*)"
)
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
RUN_ID_HEX_CHARS = 16
_RUN_RE = re.compile(f"[0-9a-f]{{{RUN_ID_HEX_CHARS}}}")
_FRAME_RE = re.compile(f"(?:(?P<run>[0-9a-f]{{{RUN_ID_HEX_CHARS}}})\\.)?(?P<index>{_NAT_LONG})")


def new_run_id() -> str:
    """A fresh run id for the v1 ``frame`` field: 16 random lowercase hex characters."""
    return secrets.token_hex(RUN_ID_HEX_CHARS // 2)


class RoiMessageError(ValueError):
    """A ROI message is malformed, does not fit its frame, or fails verification.

    Attributes:
        field: which part of the message is wrong (``"count"``, ``"box 2 w"``, ``"tag"``, ...).
    """

    def __init__(self, message: str, field: str = "message") -> None:
        super().__init__(message)
        self.field = field


class MessageFormatError(RoiMessageError):
    """The text does not follow the grammar."""


class UnknownVersionError(MessageFormatError):
    """The text announces a message version this code does not know."""


class BoxOutOfFrameError(RoiMessageError):
    """A box of the message extends beyond the frame it was read from."""


class MessageAuthenticationError(RoiMessageError):
    """The v1 tag does not match the message and frame (forged or altered), or no key."""


@dataclass(frozen=True)
class RoiMessage:
    """A parsed ROI message. ``version`` is ``"paper"`` (no header fields) or ``"1"``;
    ``run_id`` is ``None`` for a v1 message written before run ids existed."""

    boxes: tuple[Box, ...]
    version: Literal["paper", "1"] = "paper"
    camera_id: str | None = None
    model_id: str | None = None
    frame_index: int | None = None
    tag: str | None = None
    sealed: bytes | None = None
    run_id: str | None = None

    @property
    def signed_text(self) -> str:
        """The v1 text the tag covers (everything up to and including the last ``|``).

        Raises:
            ValueError: this is a paper-format message (no header).
        """
        if self.version != "1":
            raise ValueError("a paper-format message has no signed header")
        return _v1_header(
            self.camera_id or "",
            self.model_id or "",
            self.frame_index or 0,
            format_paper(self.boxes),
            self.sealed,
            self.run_id,
        )


def format_paper(boxes: Iterable[Box]) -> str:
    """Write boxes in the paper's grammar: ``n,x,y,w,h,...`` with a trailing comma.

    Raises:
        ValueError: more than :data:`MAX_BOXES` boxes.
    """
    boxes = list(boxes)
    if len(boxes) > MAX_BOXES:
        raise ValueError(f"{len(boxes)} boxes exceed the limit of {MAX_BOXES}")
    parts = [str(len(boxes))]
    for box in boxes:
        parts.extend((str(box.x), str(box.y), str(box.w), str(box.h)))
    return ",".join(parts) + ","


def _field_name(index: int) -> str:
    if index == 0:
        return "count"
    box, coord = divmod(index - 1, 4)
    return f"box {box + 1} {'xywh'[coord]}"


def parse_paper(text: str, frame_size: tuple[int, int] | None = None) -> list[Box]:
    """Parse the paper's message; with ``frame_size=(width, height)`` also check the boxes fit.

    Raises:
        MessageFormatError: not the grammar above (wrong count, non-numeric, negative or
            zero-sized fields, leading zeros, missing trailing comma, trailing garbage...).
        BoxOutOfFrameError: a box extends beyond ``frame_size``.
    """
    if not isinstance(text, str):
        raise MessageFormatError(f"message must be text, got {type(text).__name__}")
    if not text:
        raise MessageFormatError("empty message", "count")
    if not text.endswith(","):
        raise MessageFormatError(
            f"message must end with ',' (paper grammar), got ...{text[-12:]!r}", "message"
        )
    fields = text[:-1].split(",")
    for i, value in enumerate(fields):
        if not _NAT_RE.fullmatch(value):
            raise MessageFormatError(
                f"{_field_name(i)}: {value!r} is not a natural number (digits, no sign, no "
                f"leading zero, at most 9 digits)",
                _field_name(i),
            )
    count = int(fields[0])
    if count > MAX_BOXES:
        raise MessageFormatError(f"count {count} exceeds the limit of {MAX_BOXES}", "count")
    if len(fields) - 1 != 4 * count:
        raise MessageFormatError(
            f"count says {count} boxes ({4 * count} numbers) but {len(fields) - 1} numbers follow",
            "count",
        )
    boxes = []
    for b in range(count):
        x, y, w, h = (int(v) for v in fields[1 + 4 * b : 5 + 4 * b])
        for name, value in (("w", w), ("h", h)):
            if value < 1:
                field = f"box {b + 1} {name}"
                raise MessageFormatError(f"{field}: must be at least 1", field)
        box = Box(x, y, w, h)
        if frame_size is not None and not box.fits_in(*frame_size):
            raise BoxOutOfFrameError(
                f"box {b + 1} {box.as_tuple()} extends beyond the "
                f"{frame_size[0]}x{frame_size[1]} frame",
                f"box {b + 1}",
            )
        boxes.append(box)
    return boxes


def _check_id(value: str, field: str) -> None:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise MessageFormatError(
            f"{field}: {value!r} must be 1-64 characters of letters, digits, '.', '_' or '-'",
            field,
        )


def _sealed_text(sealed: bytes) -> str:
    return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def sealed_field_length(payload_bytes: int) -> int:
    """Characters a sealed payload of ``payload_bytes`` bytes adds to a v1 message."""
    return len(SEALED_PREFIX) + -(-4 * payload_bytes // 3) + 1


def _v1_header(
    camera_id: str,
    model_id: str,
    frame_index: int,
    paper: str,
    sealed: bytes | None = None,
    run_id: str | None = None,
) -> str:
    extra = "" if sealed is None else _sealed_text(sealed) + "|"
    frame = str(frame_index) if run_id is None else f"{run_id}.{frame_index}"
    return f"{V1_PREFIX}{camera_id}|{model_id}|{frame}|{paper}|{extra}"


def _parse_sealed(text: str) -> bytes:
    if not text.startswith(SEALED_PREFIX):
        version = text.split(":", 1)[0][:8]
        raise UnknownVersionError(
            f"sealed: unknown sealed-faces field {version!r} (this code reads 'S1:')", "sealed"
        )
    body = text[len(SEALED_PREFIX) :]
    if not _B64URL_RE.fullmatch(body) or len(body) % 4 == 1:
        raise MessageFormatError("sealed: not unpadded base64url text", "sealed")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _frame_digest_input(frame: np.ndarray) -> tuple[bytes, np.ndarray]:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3:
        raise TypeError("frame must be an H x W x C uint8 numpy array")
    shape = "{}x{}x{}".format(*frame.shape).encode("ascii")
    return shape, np.bitwise_and(frame, np.uint8(0xFE))


def compute_tag(signed_text: str, key: bytes, frame: np.ndarray) -> str:
    """Return the v1 tag (32 lowercase hex chars) of ``signed_text`` over ``frame``.

    Raises:
        ValueError: ``key`` is shorter than :data:`MIN_KEY_BYTES` bytes.
        TypeError: ``frame`` is not an ``H x W x C`` uint8 array.
    """
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the camera key must be at least {MIN_KEY_BYTES} bytes")
    shape, cleared = _frame_digest_input(frame)
    mac = hmac.new(bytes(key), digestmod=hashlib.sha256)
    mac.update(_TAG_DOMAIN)
    mac.update(signed_text.encode("utf-8"))
    mac.update(b"\x00" + shape + b"\x00")
    mac.update(memoryview(np.ascontiguousarray(cleared)).cast("B"))
    return mac.hexdigest()[:TAG_HEX_CHARS]


def format_v1(
    boxes: Sequence[Box],
    *,
    camera_id: str,
    model_id: str,
    frame_index: int,
    key: bytes,
    frame: np.ndarray,
    sealed: bytes | None = None,
    run_id: str | None = None,
) -> str:
    """Write a v1 message for ``frame`` (the public frame, before the message is embedded),
    with the frame's sealed-faces payload when ``sealed`` is given, and the edge's run id
    (:func:`new_run_id`) in the frame field when ``run_id`` is given.

    Raises:
        MessageFormatError: a bad camera id, model id, run id or frame index.
        BoxOutOfFrameError: a box extends beyond the frame.
        ValueError: the key is too short, or too many boxes.
    """
    _check_id(camera_id, "camera")
    _check_id(model_id, "model")
    if (
        isinstance(frame_index, bool)
        or not isinstance(frame_index, int)
        or not (0 <= frame_index < 10**19)
    ):
        raise MessageFormatError(f"frame: {frame_index!r} must be an integer in [0, 1e19)", "frame")
    if run_id is not None and (not isinstance(run_id, str) or not _RUN_RE.fullmatch(run_id)):
        raise MessageFormatError(
            f"run: {run_id!r} must be {RUN_ID_HEX_CHARS} lowercase hex characters", "run"
        )
    height, width = frame.shape[:2]
    for i, box in enumerate(boxes):
        if not box.fits_in(width, height):
            raise BoxOutOfFrameError(
                f"box {i + 1} {box.as_tuple()} extends beyond the {width}x{height} frame",
                f"box {i + 1}",
            )
    if sealed is not None and not sealed:
        raise ValueError("an empty sealed payload: omit it instead")
    header = _v1_header(camera_id, model_id, frame_index, format_paper(boxes), sealed, run_id)
    return header + compute_tag(header, key, frame)


def parse_v1(text: str, frame_size: tuple[int, int] | None = None) -> RoiMessage:
    """Parse a v1 message (syntax and box bounds only; see :func:`verify_v1` for the tag).

    Raises:
        UnknownVersionError: the text starts with ``UU`` but not ``UU1|``.
        MessageFormatError: any field does not follow the grammar.
        BoxOutOfFrameError: a box extends beyond ``frame_size``.
    """
    if not isinstance(text, str):
        raise MessageFormatError(f"message must be text, got {type(text).__name__}")
    if not text.startswith(V1_PREFIX):
        if text.startswith("UU"):
            version = text[2:].split("|", 1)[0]
            raise UnknownVersionError(f"unknown ROI message version {version!r}", "version")
        raise MessageFormatError("a v1 message starts with 'UU1|'", "version")
    match = _V1_RE.fullmatch(text)
    if match is None:
        n = text.count("|")
        raise MessageFormatError(
            f"a v1 message has 5 or 6 '|'-separated fields after 'UU1', found {n}", "message"
        )
    _check_id(match["camera"], "camera")
    _check_id(match["model"], "model")
    frame = _FRAME_RE.fullmatch(match["frame"])
    if frame is None:
        raise MessageFormatError(
            f"frame: {match['frame']!r} is not a natural number, optionally after a run id "
            f"({RUN_ID_HEX_CHARS} lowercase hex characters) and '.'",
            "frame",
        )
    boxes = parse_paper(match["paper"], frame_size)
    sealed = None if match["sealed"] is None else _parse_sealed(match["sealed"])
    if not _TAG_RE.fullmatch(match["tag"]):
        raise MessageFormatError(
            f"tag: must be {TAG_HEX_CHARS} lowercase hex characters, got {match['tag']!r}", "tag"
        )
    return RoiMessage(
        boxes=tuple(boxes),
        version="1",
        camera_id=match["camera"],
        model_id=match["model"],
        frame_index=int(frame["index"]),
        tag=match["tag"],
        sealed=sealed,
        run_id=frame["run"],
    )


def verify_v1(message: RoiMessage, key: bytes, frame: np.ndarray) -> None:
    """Check a v1 message's tag against ``frame`` with the camera's ``key``.

    Raises:
        MessageAuthenticationError: the message is not v1, or the tag does not match (message
            or picture altered, wrong camera key, message copied from another frame).
        ValueError: the key is too short.
    """
    if message.version != "1" or message.tag is None:
        raise MessageAuthenticationError("only v1 messages carry a tag to verify", "version")
    expected = compute_tag(message.signed_text, key, frame)
    if not hmac.compare_digest(expected, message.tag):
        raise MessageAuthenticationError(
            f"tag does not match: frame {message.frame_index} (run {message.run_id or '-'}) of "
            f"camera {message.camera_id!r} "
            f"was altered or forged, or the key is not this camera's",
            "tag",
        )


def parse_message(text: str, frame_size: tuple[int, int] | None = None) -> RoiMessage:
    """Parse either format: ``UU<v>|...`` as a versioned message, digits as the paper's.

    Raises:
        UnknownVersionError, MessageFormatError, BoxOutOfFrameError: see the parsers.
    """
    if isinstance(text, str) and text.startswith("UU"):
        return parse_v1(text, frame_size)
    return RoiMessage(boxes=tuple(parse_paper(text, frame_size)))
