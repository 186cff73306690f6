"""Original faces sealed to the authority's public keys: the exact, key-bound reversal carrier.

Beside ``Ud`` (learned, approximate, and reproducible by anyone who holds a camera's ``Ue``),
each replaced face's original ROI pixels travel with the frame, compressed and encrypted to one
or more authority public keys (:mod:`shared.sealing_keys`). Only a holder of a matching private
key opens them; the camera keeps no secret that opens them.

Cryptography (all from ``cryptography``; nothing home-made):

* per frame a random 256-bit data key ``K``; for each recipient, ``K`` is sealed with **HPKE**
  (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) with the
  frame's header as ``info``;
* each face is compressed (PNG by default: lossless; JPEG or WebP at a quality) and encrypted
  with **ChaCha20-Poly1305** under ``K``, nonce = its ordinal in the payload (``K`` is never
  reused across frames), associated data = the header + the face's index in the frame's ROI
  message + its box + its codec;
* the whole payload ends with an **HMAC-SHA256** (first 16 bytes) under the camera's message
  key: the authority knows the faces came from that camera even where the frame's own tag cannot
  be checked (a lossy stream, whose pixels are not the ones the tag covers).

The header is ``"uunet-sealed-faces/1" NUL camera NUL model NUL frame-index NUL``, so a payload
moved to another frame, camera or model, a face moved to another box, or a box edited in the
message fails to open (:class:`PayloadAuthenticationError`), never yields a wrong face.

Layout (big-endian)::

    "USF1"
    u8  recipients           1..8, then per recipient:
        8 bytes key id  |  u16 length  |  HPKE ciphertext of K (enc || ct)
    u16 faces                then per face:
        u16 index in the message's boxes  |  u8 codec (1 png, 2 jpeg, 3 webp)
        u32 length  |  ChaCha20-Poly1305 ciphertext
    16 bytes HMAC

Every way a payload can be wrong raises a :class:`SealedPayloadError` subclass naming it.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from shared.geometry import Box
from shared.roi_message import RoiMessage
from shared.sealing_keys import KEY_ID_BYTES, SealingPrivateKey, SealingPublicKey

__all__ = [
    "CODECS",
    "EncodedFace",
    "FaceCodec",
    "FaceDecodeError",
    "KeyNotHeldError",
    "MalformedPayloadError",
    "OpenedFaces",
    "PayloadAuthenticationError",
    "SealContext",
    "SealedPayloadError",
    "decode_face",
    "encode_face",
    "open_sealed_faces",
    "seal_faces",
    "sealed_size",
]

FaceCodec = Literal["png", "jpeg", "webp"]
CODECS: dict[str, int] = {"png": 1, "jpeg": 2, "webp": 3}
_CODEC_NAMES = {v: k for k, v in CODECS.items()}
MAGIC = b"USF1"
MAX_RECIPIENTS = 8
MAX_FACES = 4096
MAC_BYTES = 16
_AEAD_TAG = 16
_KEY_BYTES = 32
_HPKE_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
_HPKE_BYTES = 32 + _KEY_BYTES + _AEAD_TAG  # X25519 enc + sealed key + tag
_RECIPIENT_BYTES = KEY_ID_BYTES + 2 + _HPKE_BYTES
_FACE_HEAD = struct.Struct(">HBI")
_DOMAIN = b"uunet-sealed-faces/1\x00"
_MAC_DOMAIN = b"uunet-sealed-faces-mac/1\x00"


class SealedPayloadError(ValueError):
    """A sealed-faces payload cannot be opened.

    Attributes:
        field: what is wrong (``"payload"``, ``"mac"``, ``"key"``, ``"face 2"``, ...).
    """

    def __init__(self, message: str, field: str = "payload") -> None:
        super().__init__(message)
        self.field = field


class MalformedPayloadError(SealedPayloadError):
    """The bytes do not follow the layout: truncated, wrong magic, bad counts or indices."""


class PayloadAuthenticationError(SealedPayloadError):
    """The payload was altered, or belongs to another frame, camera, model or box (replayed or
    swapped), or the camera key is not the one that sealed it."""


class KeyNotHeldError(SealedPayloadError):
    """None of the payload's recipients is a key held here (a rotated-out or foreign key).

    Attributes:
        key_ids: the key ids the payload was sealed to.
    """

    def __init__(self, message: str, key_ids: Sequence[str]) -> None:
        super().__init__(message, "key")
        self.key_ids = tuple(key_ids)


class FaceDecodeError(SealedPayloadError):
    """A face opened but its image is not decodable or not the size of its box."""


@dataclass(frozen=True)
class SealContext:
    """What a payload is bound to: the camera, the model that made the frame's surrogates, and
    the frame's index and run id (all as in the frame's v1 ROI message). Without a run id (a
    payload written before run ids existed) the binding is the one it had then, so such a
    payload still opens."""

    camera_id: str
    model_id: str
    frame_index: int
    run_id: str | None = None

    @classmethod
    def of(cls, message: RoiMessage) -> SealContext:
        """The context a v1 message's sealed payload is bound to.

        Raises:
            ValueError: ``message`` is not a v1 message.
        """
        if message.version != "1" or message.camera_id is None or message.model_id is None:
            raise ValueError("only a v1 message binds a sealed payload")
        return cls(message.camera_id, message.model_id, message.frame_index or 0, message.run_id)

    def header(self) -> bytes:
        frame = self.frame_index if self.run_id is None else f"{self.run_id}.{self.frame_index}"
        text = f"{self.camera_id}\x00{self.model_id}\x00{frame}\x00"
        return _DOMAIN + text.encode("utf-8")


@dataclass(frozen=True)
class EncodedFace:
    """One face's compressed original pixels, before encryption.

    Attributes:
        index: the position of its box among the frame's ROI message boxes.
        codec: how ``data`` is compressed.
        data: the compressed image (exactly the box's width and height).
    """

    index: int
    codec: FaceCodec
    data: bytes


@dataclass(frozen=True)
class OpenedFaces:
    """The faces of one payload, by index in the message's boxes.

    Attributes:
        faces: index -> ``h x w x 3`` RGB uint8 original pixels.
        codecs: index -> the codec it travelled in (``png`` is bit-exact).
        key_id: the private key that opened it.
        mac_verified: whether the camera key's HMAC was checked.
    """

    faces: dict[int, np.ndarray]
    codecs: dict[int, str]
    key_id: str
    mac_verified: bool


def encode_face(pixels: np.ndarray, codec: FaceCodec = "png", quality: int = 90) -> bytes:
    """Compress an ``h x w x 3`` RGB uint8 face (``quality`` 1-100 for JPEG and WebP).

    Raises:
        ValueError: a bad array, codec or quality, or the encoder failed.
    """
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 3:
        raise ValueError("a face must be an h x w x 3 uint8 array")
    if pixels.shape[2] != 3 or pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ValueError(f"a face must be h x w x 3, got {pixels.shape}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1-100, got {quality}")
    params = {
        "png": [cv2.IMWRITE_PNG_COMPRESSION, 3],
        # 4:4:4: with the default 4:2:0 chroma, small or sharp faces stay under 40 dB even
        # at quality 100; 4:4:4 at 95 measured >= 40.5 dB on every face of four real clips
        "jpeg": [
            cv2.IMWRITE_JPEG_QUALITY,
            quality,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
        ],
        "webp": [cv2.IMWRITE_WEBP_QUALITY, quality],
    }.get(codec)
    if params is None:
        raise ValueError(f"unknown face codec {codec!r} (use png, jpeg or webp)")
    ok, data = cv2.imencode("." + codec, np.ascontiguousarray(pixels[..., ::-1]), params)
    if not ok:
        raise ValueError(f"the {codec} encoder failed on a {pixels.shape} face")
    return data.tobytes()


def _declared_size(data: bytes, codec: str) -> tuple[int, int] | None:
    """(width, height) from the image header, read before decoding (no decompression bomb)."""
    if codec == "png":
        if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 24:
            return None
        return struct.unpack(">II", data[16:24])
    if codec == "jpeg":
        pos = 2
        while data[:2] == b"\xff\xd8" and pos + 9 <= len(data):
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD):
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return width, height
            pos += 2 + length
        return None
    if codec == "webp" and data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(
                data[27:30], "little"
            ) + 1
    return None


def decode_face(data: bytes, codec: str, box: Box, field: str = "face") -> np.ndarray:
    """Decompress a face and check it is exactly ``box``'s size; return ``h x w x 3`` RGB.

    Raises:
        FaceDecodeError: an unknown codec, a header declaring another size, or undecodable.
    """
    if codec not in CODECS:
        raise FaceDecodeError(f"{field}: unknown codec {codec!r}", field)
    declared = _declared_size(data, codec)
    if declared != (box.w, box.h):
        raise FaceDecodeError(
            f"{field}: the {codec} image declares {declared}, its box is {box.w}x{box.h}", field
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape != (box.h, box.w, 3):
        shape = None if image is None else image.shape
        raise FaceDecodeError(f"{field}: the {codec} image does not decode to its box ({shape})")
    return np.ascontiguousarray(image[..., ::-1])


def _face_aad(header: bytes, index: int, box: Box, codec: int) -> bytes:
    return header + f"face\x00{index}\x00{box.x},{box.y},{box.w},{box.h}\x00{codec}".encode()


def _nonce(ordinal: int) -> bytes:
    return b"\x00" * 4 + ordinal.to_bytes(8, "big")


def sealed_size(face_bytes: Sequence[int], recipients: int) -> int:
    """The payload's size in bytes for faces compressed to ``face_bytes`` bytes each."""
    per_face = _FACE_HEAD.size + _AEAD_TAG
    return (
        len(MAGIC) + 1 + recipients * _RECIPIENT_BYTES + 2
        + sum(n + per_face for n in face_bytes) + MAC_BYTES
    )  # fmt: skip


def seal_faces(
    faces: Sequence[EncodedFace],
    boxes: Sequence[Box],
    context: SealContext,
    recipients: Sequence[SealingPublicKey],
    camera_key: bytes,
) -> bytes:
    """Encrypt ``faces`` (each naming its box among ``boxes``, the frame's message boxes).

    Raises:
        ValueError: no or too many recipients, a face index outside ``boxes`` or repeated, an
            unknown codec, too many faces, or a face larger than 4 GiB.
    """
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise ValueError(f"1-{MAX_RECIPIENTS} recipients are needed, got {len(recipients)}")
    if len(faces) > MAX_FACES:
        raise ValueError(f"{len(faces)} faces exceed the limit of {MAX_FACES}")
    indices = [face.index for face in faces]
    if len(set(indices)) != len(indices) or any(not 0 <= i < len(boxes) for i in indices):
        raise ValueError(f"face indices {indices} must be distinct boxes of {len(boxes)}")
    header = context.header()
    data_key = ChaCha20Poly1305.generate_key()
    out = bytearray(MAGIC)
    out.append(len(recipients))
    for recipient in recipients:
        wrapped = _HPKE_SUITE.encrypt(data_key, recipient.key, info=header)
        out += bytes.fromhex(recipient.key_id) + struct.pack(">H", len(wrapped)) + wrapped
    out += struct.pack(">H", len(faces))
    cipher = ChaCha20Poly1305(data_key)
    for ordinal, face in enumerate(faces):
        codec = CODECS.get(face.codec)
        if codec is None:
            raise ValueError(f"unknown face codec {face.codec!r}")
        aad = _face_aad(header, face.index, boxes[face.index], codec)
        sealed = cipher.encrypt(_nonce(ordinal), face.data, aad)
        out += _FACE_HEAD.pack(face.index, codec, len(sealed)) + sealed
    out += _mac(camera_key, header, bytes(out))
    return bytes(out)


def _mac(camera_key: bytes, header: bytes, body: bytes) -> bytes:
    mac = hmac.new(camera_key, _MAC_DOMAIN + header, hashlib.sha256)
    mac.update(body)
    return mac.digest()[:MAC_BYTES]


@dataclass(frozen=True)
class _Parsed:
    recipients: list[tuple[str, bytes]]
    faces: list[tuple[int, int, bytes]]
    body: bytes
    mac: bytes


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise MalformedPayloadError(
                f"sealed payload truncated: {what} needs {n} bytes at offset {self.pos}, "
                f"{len(self.data) - self.pos} left",
                what,
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def _parse(data: bytes, n_boxes: int) -> _Parsed:
    if not isinstance(data, (bytes, bytearray)):
        raise MalformedPayloadError("a sealed payload must be bytes")
    reader = _Reader(bytes(data))
    if reader.take(len(MAGIC), "magic") != MAGIC:
        raise MalformedPayloadError("not a sealed-faces payload (magic differs)", "magic")
    count = reader.take(1, "recipients")[0]
    if not 1 <= count <= MAX_RECIPIENTS:
        raise MalformedPayloadError(f"{count} recipients (1-{MAX_RECIPIENTS})", "recipients")
    recipients = []
    for r in range(count):
        key_id = reader.take(KEY_ID_BYTES, f"recipient {r + 1}").hex()
        (length,) = struct.unpack(">H", reader.take(2, f"recipient {r + 1}"))
        recipients.append((key_id, reader.take(length, f"recipient {r + 1}")))
    (n_faces,) = struct.unpack(">H", reader.take(2, "faces"))
    faces, seen = [], set()
    for f in range(n_faces):
        index, codec, length = _FACE_HEAD.unpack(reader.take(_FACE_HEAD.size, f"face {f + 1}"))
        if index >= n_boxes or index in seen:
            raise MalformedPayloadError(
                f"face {f + 1} names box {index}: the message has {n_boxes} boxes"
                + (" and names it twice" if index in seen else ""),
                f"face {f + 1}",
            )
        if codec not in _CODEC_NAMES:
            raise MalformedPayloadError(f"face {f + 1}: unknown codec {codec}", f"face {f + 1}")
        seen.add(index)
        faces.append((index, codec, reader.take(length, f"face {f + 1}")))
    body_end = reader.pos
    mac = reader.take(MAC_BYTES, "mac")
    if reader.pos != len(reader.data):
        extra = len(reader.data) - reader.pos
        raise MalformedPayloadError(f"{extra} bytes after the payload's MAC", "payload")
    return _Parsed(recipients, faces, reader.data[:body_end], mac)


def open_sealed_faces(
    data: bytes,
    boxes: Sequence[Box],
    context: SealContext,
    private_keys: Mapping[str, SealingPrivateKey],
    camera_key: bytes | None,
) -> OpenedFaces:
    """Open a payload read from the frame that ``context`` and ``boxes`` describe (its ROI
    message). With ``camera_key`` the camera's HMAC is checked first; without it (no key for
    the camera) the faces still open but ``mac_verified`` is false.

    Raises:
        MalformedPayloadError: the bytes do not follow the layout.
        PayloadAuthenticationError: the HMAC or an AEAD tag fails (altered, replayed into
            another frame, faces swapped between boxes, a box edited, a foreign camera key).
        KeyNotHeldError: no recipient is among ``private_keys``.
        FaceDecodeError: a face opened but is not an image of its box's size.
    """
    parsed = _parse(data, len(boxes))
    header = context.header()
    if camera_key is not None and not hmac.compare_digest(
        _mac(camera_key, header, parsed.body), parsed.mac
    ):
        raise PayloadAuthenticationError(
            f"sealed payload of frame {context.frame_index} (camera {context.camera_id!r}) fails "
            "its HMAC: altered, moved from another frame, or not this camera's",
            "mac",
        )
    held = next(((kid, ct) for kid, ct in parsed.recipients if kid in private_keys), None)
    if held is None:
        ids = [kid for kid, _ in parsed.recipients]
        raise KeyNotHeldError(
            f"the faces of frame {context.frame_index} are sealed to key id(s) "
            f"{', '.join(ids)}, none of which is held here",
            ids,
        )
    key_id, wrapped = held
    try:
        data_key = _HPKE_SUITE.decrypt(wrapped, private_keys[key_id].key, info=header)
    except (InvalidTag, ValueError) as exc:
        raise PayloadAuthenticationError(
            f"the data key sealed to {key_id} does not open for frame {context.frame_index} "
            f"of camera {context.camera_id!r}: the payload belongs to another frame or was "
            "altered",
            "key",
        ) from exc
    cipher = ChaCha20Poly1305(data_key)
    faces: dict[int, np.ndarray] = {}
    codecs: dict[int, str] = {}
    for ordinal, (index, codec, sealed) in enumerate(parsed.faces):
        field = f"face {ordinal + 1}"
        try:
            plain = cipher.decrypt(
                _nonce(ordinal), sealed, _face_aad(header, index, boxes[index], codec)
            )
        except InvalidTag as exc:
            raise PayloadAuthenticationError(
                f"{field} (box {index}) of frame {context.frame_index} fails authentication: "
                "altered, or moved to another box",
                field,
            ) from exc
        name = _CODEC_NAMES[codec]
        faces[index] = decode_face(plain, name, boxes[index], field)
        codecs[index] = name
    return OpenedFaces(faces, codecs, key_id, camera_key is not None)
