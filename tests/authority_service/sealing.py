"""The edge's face sealing for the authority tests, with the shared code the edge uses.

Each replaced face's original ROI is cropped from the original frame, compressed
(:func:`shared.sealed_faces.encode_face`) and sealed to the authority's public keys with the
camera's key (:func:`shared.sealed_faces.seal_faces`); the payload then travels in the frame's v1
message (``public_frames(..., sealed_for=sealer(...))`` of :mod:`.edge_role`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from shared.frame_seal import seal_frame
from shared.geometry import Box, crop
from shared.sealed_faces import (
    MAC_BYTES,
    EncodedFace,
    FaceCodec,
    SealContext,
    _mac,
    encode_face,
    seal_faces,
)
from shared.sealing_keys import (
    PRIVATE_KEY_NAME,
    SealingPrivateKey,
    SealingPublicKey,
    generate_key_pair,
    load_private_key,
)
from tests.authority_service.conftest import CAMERA_ID, CAMERA_KEY
from tests.authority_service.edge_role import SealedFor, deidentify_clip, synthetic_frames
from tests.toy_models import TOY_MODEL_ID

#: (frame index, boxes) -> the indices of the boxes whose faces fit in the payload (None: no
#: payload at all for that frame).
Fit = Callable[[int, Sequence[Box]], Sequence[int] | None]


def key_pair(directory: Path) -> SealingPrivateKey:
    """A new key pair written to ``directory`` (as ``uunet-authority keys generate``)."""
    generate_key_pair(directory)
    return load_private_key(directory / PRIVATE_KEY_NAME)


def payload(
    original: np.ndarray,
    boxes: Sequence[Box],
    frame_index: int,
    recipients: Sequence[SealingPublicKey],
    *,
    indices: Sequence[int] | None = None,
    codec: FaceCodec = "png",
    quality: int = 95,
    camera_id: str = CAMERA_ID,
    camera_key: bytes = CAMERA_KEY,
    model_id: str = TOY_MODEL_ID,
) -> bytes:
    """The sealed originals of ``boxes`` (those of ``indices``, default all) of one frame."""
    chosen = range(len(boxes)) if indices is None else indices
    faces = [
        EncodedFace(i, codec, encode_face(crop(original, boxes[i]), codec, quality)) for i in chosen
    ]
    context = SealContext(camera_id, model_id, frame_index)
    return seal_faces(faces, boxes, context, recipients, camera_key)


def sealer(
    recipients: Sequence[SealingPublicKey] | Callable[[int], Sequence[SealingPublicKey]],
    *,
    fit: Fit | None = None,
    codec: FaceCodec | Callable[[int], FaceCodec] = "png",
    quality: int = 95,
) -> SealedFor:
    """A ``sealed_for`` of :func:`.edge_role.public_frames`: seals the faces ``fit`` picks (all
    by default) to ``recipients`` (or ``recipients(frame_index)``), in ``codec``."""

    def sealed_for(index: int, original: np.ndarray, boxes: Sequence[Box]) -> bytes | None:
        indices = list(range(len(boxes))) if fit is None else fit(index, boxes)
        if indices is None or not boxes:
            return None
        return payload(
            original,
            boxes,
            index,
            recipients(index) if callable(recipients) else recipients,
            indices=indices,
            codec=codec(index) if callable(codec) else codec,
            quality=quality,
        )

    return sealed_for


# -- the clips the authority tests reverse --------------------------------------------------

#: Frames of the lossless clip (480x360: room in the LSBs for two PNG faces).
LOSSLESS_SIZE = (480, 360)
LOSSLESS_FRAMES = 4
#: B is 1.5x the toy model's size (Ud is not exact there); C overlaps B and never fits in the
#: payload, so its feathered Ud paste covers part of B unless the exact faces are pasted last.
BOX_A, BOX_B, BOX_C = Box(16, 24, 64, 64), Box(200, 60, 96, 96), Box(270, 120, 72, 72)
#: The boxes of the single-frame tests: both sealed.
SEALED_BOXES = (BOX_A, BOX_B)
#: The frame whose message carries no payload at all, and the one sealed to the older key.
NO_PAYLOAD_FRAME, OLD_KEY_FRAME = 2, 3


def lossless_sealed_clip(
    model_dir: Path, out: Path, new: SealingPublicKey, old: SealingPublicKey
) -> tuple[Path, list[np.ndarray]]:
    """An FFV1 evidence clip whose frames carry A, B and C, with A and B sealed (PNG) to
    ``new`` (frame :data:`OLD_KEY_FRAME` to ``old``), frame :data:`NO_PAYLOAD_FRAME` sealing
    nothing; returns the clip and the original frames."""
    originals = synthetic_frames(LOSSLESS_FRAMES, *LOSSLESS_SIZE)
    deidentify_clip(
        originals,
        lambda i, f: [BOX_A, BOX_B, BOX_C],
        model_dir,
        out,
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
        sealed_for=sealer(
            lambda i: [old if i == OLD_KEY_FRAME else new],
            fit=lambda i, boxes: None if i == NO_PAYLOAD_FRAME else [0, 1],
        ),
    )
    return out, originals


# -- what an attacker does to a payload ---------------------------------------------------------


def reseal(
    public: np.ndarray,
    sealed: bytes | None,
    *,
    index: int = 5,
    boxes: Sequence[Box] = SEALED_BOXES,
    key: bytes = CAMERA_KEY,
) -> np.ndarray:
    """``public`` carrying a v1 message for frame ``index`` with ``sealed``, tagged with
    ``key`` (the camera's: an attacker who holds it)."""
    rgb, _ = seal_frame(
        public.copy(),
        boxes,
        camera_id=CAMERA_ID,
        model_id=TOY_MODEL_ID,
        frame_index=index,
        key=key,
        sealed=sealed,
    )
    return rgb


def remac(data: bytes, index: int) -> bytes:
    """``data`` with its HMAC recomputed for frame ``index`` (an attacker with the camera key)."""
    body = data[:-MAC_BYTES]
    return body + _mac(CAMERA_KEY, SealContext(CAMERA_ID, TOY_MODEL_ID, index).header(), body)


def face_offsets(data: bytes) -> list[int]:
    """Offsets of each face's header (u16 index, u8 codec, u32 length) in a payload."""
    pos = 5
    for _ in range(data[4]):
        pos += 8 + 2 + struct.unpack(">H", data[pos + 8 : pos + 10])[0]
    (faces,), pos = struct.unpack(">H", data[pos : pos + 2]), pos + 2
    offsets = []
    for _ in range(faces):
        offsets.append(pos)
        pos += 7 + struct.unpack(">I", data[pos + 3 : pos + 7])[0]
    return offsets


def swapped(data: bytes) -> bytes:
    first, second = face_offsets(data)
    out = bytearray(data)
    out[first : first + 2], out[second : second + 2] = (
        data[second : second + 2],
        data[first : 2 + first],
    )
    return bytes(out)


def flipped(data: bytes) -> bytes:
    out = bytearray(data)
    out[face_offsets(data)[1] + 20] ^= 0x01  # inside face 2's ciphertext
    return bytes(out)
