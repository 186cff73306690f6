"""The edge's half of sealed faces: each replaced face's original pixels, for the authority only.

Beside ``Ud`` (approximate), the exact reversal carrier: :class:`FaceSealer` compresses the
original pixels of the ROIs that ``Ue`` replaced (copied before the replacement, held in memory
only, never logged or written) and encrypts them to the authority's public keys
(:func:`shared.sealed_faces.seal_faces`); the payload travels in the frame's v1 ROI message
(``S1:`` field, covered by the tag). The edge holds no key that opens them.

Faces are fitted into what the frame's LSB capacity leaves after the rest of the message, the
smallest first (the most faces come back exact); a face that does not fit, or whose compression
or encryption fails, stays ``Ud``-only and is counted (``faces_unsealed{reason="capacity"|
"error"}``; ``faces_sealed`` and ``sealed_bytes`` count what went in). Nothing here drops a
frame or raises.

The lossy stream's SEI (``sealed_faces.sei``) carries the same faces: the same payload when its
codec is the frame's (``png`` / ``png``: the SEI text is the LSB text), else the same faces
compressed again (``jpeg`` at ``sei_quality``, or ``png``) in a payload of their own, or none
(``off``). A face that fails there only is counted ``reason="sei_error"``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from edge_agent.config import SealedFacesSettings
from edge_agent.stats import Stats
from shared import stego
from shared.geometry import Box
from shared.roi_message import TAG_HEX_CHARS, RoiMessage, format_v1, sealed_field_length
from shared.sealed_faces import (
    MAX_RECIPIENTS,
    EncodedFace,
    FaceCodec,
    SealContext,
    encode_face,
    seal_faces,
    sealed_size,
)
from shared.sealing_keys import SealingKeyError, SealingPublicKey, load_public_key

__all__ = [
    "UNSEALED_REASONS",
    "FaceSealer",
    "FaceSealingOptions",
    "SealedFaces",
    "SeiFaces",
    "build_face_sealer",
    "copy_originals",
    "load_recipients",
]

log = logging.getLogger(__name__)

SeiFaces = Literal["off", "jpeg", "png"]
UNSEALED_REASONS = ("capacity", "error", "sei_error")


def load_recipients(paths: Sequence[Path]) -> tuple[SealingPublicKey, ...]:
    """Read the authority's public key files (a key named twice counts once).

    Raises:
        SealingKeyError: a file is missing, unreadable, not an X25519 public key, or a private
            key (the message names the file); more than 8 distinct keys.
    """
    keys: dict[str, SealingPublicKey] = {}
    for path in paths:
        key = load_public_key(path)
        if key.key_id in keys:
            log.warning("sealed faces: %s is key %s again; counted once", path, key.key_id)
        keys.setdefault(key.key_id, key)
    if len(keys) > MAX_RECIPIENTS:
        raise SealingKeyError(f"{len(keys)} sealing keys: at most {MAX_RECIPIENTS}")
    return tuple(keys.values())


def copy_originals(frame: np.ndarray, rois: Sequence[Box]) -> list[np.ndarray]:
    """Copies of the ROIs' pixels (each from the frame as given, overlaps included)."""
    return [frame[r.y : r.bottom, r.x : r.right].copy() for r in rois]


@dataclass(frozen=True)
class FaceSealingOptions:
    """How faces are sealed. ``sei`` ``None``: no lossy output, no SEI variant is made."""

    recipients: tuple[SealingPublicKey, ...]
    codec: FaceCodec = "png"
    quality: int = 90
    sei: SeiFaces | None = None
    sei_quality: int = 95


@dataclass(frozen=True)
class SealedFaces:
    """What one frame's message and its lossy SEI carry.

    Attributes:
        payload: the message's sealed field (``None``: no face sealed).
        sei_payload: the SEI message's sealed field (when ``sei_differs``).
        sei_differs: the SEI text is a message of its own (another payload, or none).
        sealed: the indices (among the message's boxes) of the faces in ``payload``.
        unsealed: reason -> faces left ``Ud``-only.
    """

    payload: bytes | None
    sei_payload: bytes | None = None
    sei_differs: bool = False
    sealed: tuple[int, ...] = ()
    unsealed: dict[str, int] = field(default_factory=dict)

    def without_faces(self) -> SealedFaces:
        """The same frame with no face sealed (the sealed ones counted as errors)."""
        unsealed = Counter(self.unsealed)
        unsealed["error"] += len(self.sealed)
        return SealedFaces(None, unsealed=dict(unsealed))


class FaceSealer:
    """Seal a frame's original faces to the authority's keys, within the frame's capacity.

    Args:
        options: recipients (1-8) and codecs.
        camera_key: the camera's HMAC key (the payload's MAC; the v1 message's key).
        stats: where the counters go (created at 0, so they are exported from the start).

    Raises:
        ValueError: no or too many recipients.
    """

    def __init__(self, options: FaceSealingOptions, camera_key: bytes, stats: Stats) -> None:
        if not 1 <= len(options.recipients) <= MAX_RECIPIENTS:
            raise ValueError(f"1-{MAX_RECIPIENTS} recipients, got {len(options.recipients)}")
        self.options = options
        self.camera_key = camera_key
        self.stats = stats
        stats.count("faces_sealed", 0)
        stats.count("sealed_bytes", 0)
        for reason in UNSEALED_REASONS:
            stats.count("faces_unsealed", 0, reason=reason)

    @property
    def key_ids(self) -> list[str]:
        """The recipients' key ids."""
        return [key.key_id for key in self.options.recipients]

    def seal(
        self,
        originals: Sequence[np.ndarray],
        boxes: Sequence[Box],
        context: SealContext,
        frame_shape: tuple[int, ...],
    ) -> SealedFaces:
        """The payloads for a frame whose message lists ``boxes`` (``originals[i]``: box i's
        original pixels). Never raises: a failure leaves faces ``Ud``-only (logged)."""
        try:
            return self._seal(originals, boxes, context, frame_shape)
        except Exception as exc:  # noqa: BLE001 (a bug here must not drop the frame)
            log.error(
                "frame %d: sealing %d faces failed (%s: %s); they stay Ud-only",
                context.frame_index,
                len(originals),
                type(exc).__name__,
                exc,
            )
            return SealedFaces(None, unsealed={"error": len(originals)})

    def sei_message(
        self, faces: SealedFaces, boxes: Sequence[Box], context: SealContext, frame: np.ndarray
    ) -> str | None:
        """The lossy SEI's own v1 message (``None``: the SEI carries the LSB message), its tag
        over ``frame`` (LSBs ignored: the lossless frame's tag, before or after embedding).

        Raises:
            shared.roi_message.RoiMessageError, ValueError: as :func:`format_v1`.
        """
        if not faces.sei_differs:
            return None
        return format_v1(
            boxes,
            camera_id=context.camera_id,
            model_id=context.model_id,
            frame_index=context.frame_index,
            key=self.camera_key,
            frame=frame,
            sealed=faces.sei_payload,
            run_id=context.run_id,
        )

    def record(self, faces: SealedFaces) -> None:
        """Count a frame's sealed and unsealed faces (once its message is written)."""
        if faces.sealed:
            self.stats.count("faces_sealed", len(faces.sealed))
            self.stats.count("sealed_bytes", len(faces.payload or b""))
        for reason, count in faces.unsealed.items():
            if count:
                self.stats.count("faces_unsealed", count, reason=reason)

    def _budget(self, boxes: Sequence[Box], context: SealContext, shape: tuple[int, ...]) -> int:
        """Characters the sealed field may take: the LSB capacity less the rest of the v1
        message (its header, boxes and tag)."""
        bare = RoiMessage(
            boxes=tuple(boxes),
            version="1",
            camera_id=context.camera_id,
            model_id=context.model_id,
            frame_index=context.frame_index,
            run_id=context.run_id,
        )
        return stego.capacity(shape) - len(bare.signed_text) - TAG_HEX_CHARS

    def _encode(
        self,
        originals: Sequence[np.ndarray],
        indices: Sequence[int],
        codec: FaceCodec,
        quality: int,
        unsealed: Counter[str],
        reason: str,
        frame_index: int,
    ) -> list[EncodedFace]:
        faces = []
        for index in indices:
            try:
                faces.append(
                    EncodedFace(index, codec, encode_face(originals[index], codec, quality))
                )
            except ValueError as exc:
                unsealed[reason] += 1
                log.error("frame %d: face %d not sealed (%s): %s", frame_index, index, codec, exc)
        return faces

    def _encrypt(
        self,
        faces: list[EncodedFace],
        boxes: Sequence[Box],
        context: SealContext,
        unsealed: Counter[str],
        reason: str,
    ) -> bytes | None:
        if not faces:
            return None
        try:
            return seal_faces(faces, boxes, context, self.options.recipients, self.camera_key)
        except Exception as exc:  # noqa: BLE001 (ValueError, or the cryptography backend's)
            unsealed[reason] += len(faces)
            log.error(
                "frame %d: encrypting %d faces failed (%s: %s); they stay Ud-only",
                context.frame_index,
                len(faces),
                type(exc).__name__,
                exc,
            )
            return None

    def _fit(
        self, faces: list[EncodedFace], budget: int, unsealed: Counter[str]
    ) -> list[EncodedFace]:
        """The most faces whose sealed field fits ``budget`` characters (the smallest first),
        in box order."""
        recipients = len(self.options.recipients)
        chosen: list[EncodedFace] = []
        sizes: list[int] = []
        for face in sorted(faces, key=lambda f: (len(f.data), f.index)):
            if sealed_field_length(sealed_size([*sizes, len(face.data)], recipients)) <= budget:
                chosen.append(face)
                sizes.append(len(face.data))
            else:
                unsealed["capacity"] += 1
        return sorted(chosen, key=lambda f: f.index)

    def _no_faces(self, boxes: Sequence[Box], context: SealContext, budget: int) -> SealedFaces:
        """A frame without faces gets an empty payload: its HMAC still authenticates the
        message where the frame's own tag cannot be checked (a lossy stream), so a faceless
        frame does not make an authenticated lossy clip unverifiable. ~165 characters."""
        if budget < sealed_field_length(sealed_size([], len(self.options.recipients))):
            return SealedFaces(None)
        payload = seal_faces([], boxes, context, self.options.recipients, self.camera_key)
        return SealedFaces(payload, None, self.options.sei == "off")

    def _seal(
        self,
        originals: Sequence[np.ndarray],
        boxes: Sequence[Box],
        context: SealContext,
        shape: tuple[int, ...],
    ) -> SealedFaces:
        options, index = self.options, context.frame_index
        unsealed: Counter[str] = Counter()
        budget = self._budget(boxes, context, shape)
        if not originals:
            return self._no_faces(boxes, context, budget)
        if budget < sealed_field_length(sealed_size([0], len(options.recipients))):
            unsealed["capacity"] += len(originals)  # no room for even an empty face
            chosen: list[EncodedFace] = []
        else:
            every = range(len(originals))
            encoded = self._encode(
                originals, every, options.codec, options.quality, unsealed, "error", index
            )
            chosen = self._fit(encoded, budget, unsealed)
        if unsealed["capacity"]:
            log.debug(
                "frame %d: %d of %d faces Ud-only, no room (%d characters left)",
                index, unsealed["capacity"], len(originals), budget,
            )  # fmt: skip
        payload = self._encrypt(chosen, boxes, context, unsealed, "error")
        if payload is None:
            return SealedFaces(None, unsealed=dict(unsealed))
        sealed = tuple(face.index for face in chosen)
        sei = options.sei
        if sei is None or (
            sei == options.codec and (sei == "png" or options.sei_quality == options.quality)
        ):
            return SealedFaces(payload, sealed=sealed, unsealed=dict(unsealed))
        sei_payload = None
        if sei != "off":
            again = self._encode(
                originals, sealed, sei, options.sei_quality, unsealed, "sei_error", index
            )
            sei_payload = self._encrypt(again, boxes, context, unsealed, "sei_error")
        return SealedFaces(payload, sei_payload, True, sealed, dict(unsealed))


def build_face_sealer(
    settings: SealedFacesSettings, camera_key: bytes | None, stats: Stats, *, lossy: bool
) -> FaceSealer | None:
    """The face sealer ``settings`` ask for (``None``: no recipient), its keys loaded and their
    key ids logged. ``lossy``: a lossy output is configured (its SEI variant is made).

    Raises:
        SealingKeyError: a recipient file is missing, unreadable, not an X25519 public key, or
            a private key (the message names the file).
        ValueError: recipients but no camera key (the paper format; the settings refuse it).
    """
    if not settings.recipients:
        return None
    if camera_key is None:
        raise ValueError("sealed faces need v1 messages and the camera key")
    recipients = load_recipients(settings.recipients)
    sei = settings.sei if lossy else None
    options = FaceSealingOptions(
        recipients, settings.codec, settings.quality, sei, settings.sei_quality
    )
    sealer = FaceSealer(options, camera_key, stats)
    log.info(
        "sealing original faces (%s) to key id(s) %s; lossy SEI: %s",
        settings.codec,
        ", ".join(sealer.key_ids),
        sei or "no lossy output",
    )
    return sealer
