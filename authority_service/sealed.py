"""Sealed original faces at the authority: open a frame's payload, paste its faces exactly, count.

Beside ``Ud`` (learned, approximate), a frame's v1 ROI message may carry the original pixels of
its replaced faces, sealed at the edge to the authority's public keys (the message's ``S1:``
field, :mod:`shared.sealed_faces`). :class:`SealedFaceOpener` opens it with the private keys
the authority holds (``sealing.private_keys``, credentials; ``reconstruct --private-key``,
several for rotation, picked by key id) and the camera's HMAC key, bound to the message's
camera id, model id, frame index and boxes (:class:`~shared.sealed_faces.SealContext`).

Per face (box ``i`` of the message):

* it opens: its whole ROI rectangle is pasted back **exactly** as it travelled (bit-exact for
  PNG; JPEG/WebP at the edge's quality), *after* ``Ud`` pasted the frame's other faces, so no
  feathered paste of a neighbouring box overwrites an exact face (:func:`paste_exact`);
* it goes through ``Ud`` as before, with a reason: ``no_payload`` (the message carries none),
  ``not_in_payload`` (the payload lacks it: it did not fit at the edge), ``key_not_held`` (the
  payload is sealed only to keys not held here). With ``sealing.on_key_not_held: error`` the
  last one fails the clip instead (:class:`~authority_service.errors.SealingKeyNotHeldError`).

Either way each face is counted by method and reason (:class:`FaceMethods`, the report's
``faces_by_method``, and the audit record's detail), with the key ids used and missing.

A payload that does not open fails the clip with
:class:`~authority_service.errors.SealedFacesError` (``sealed_faces_invalid``), never a wrong
face and never a silent fallback to ``Ud``: malformed or truncated bytes (``reason:
malformed``); the camera's HMAC or a per-face AEAD tag failing (``forged``: altered, replayed
from another frame, camera or model, a face moved to another box, a box edited; an attacker who
also holds the camera key and re-tags the message still fails the AEAD, whose data key the
HPKE layer binds to the frame); an authenticated image that is not its box's (``undecodable``).
A payload is checked even when no private key is held (its HMAC and layout): a damaged one is
reported, not skipped.

**Lossy streams (SEI).** The v1 tag covers the lossless pixels, so a message read from SEI can
never be verified by it (:class:`~authority_service.messages.SeiMessageSource`). A sealed
payload is verified on its own, though: its HMAC (the camera key) covers camera, model, frame
index and every sealed face, and each face's AEAD binds its box. So an SEI message counts as
**verified** when its payload's HMAC verified with the camera's key *and every box of the
message opened from it* (a box outside the payload is bound by nothing: such a message stays
unverifiable, refused under ``messages.require_authentication``, as before; so is a frame
without faces unless its message carries a payload of no face, whose HMAC then vouches for
it). Without the
camera's key (``require_authentication: false``) faces still open, but the frame is reported
unverified, since anyone holding the authority's *public* key could have sealed them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from cryptography.hazmat.primitives.asymmetric import x25519

from authority_service.errors import SealedFacesError, SealingKeyNotHeldError
from shared.geometry import Box, crop
from shared.roi_message import RoiMessage
from shared.sealed_faces import (
    FaceDecodeError,
    KeyNotHeldError,
    MalformedPayloadError,
    SealContext,
    SealedPayloadError,
    open_sealed_faces,
)
from shared.sealing_keys import SealingPrivateKey

__all__ = [
    "MAX_FACE_ENTRIES",
    "UD_REASONS",
    "FaceMethods",
    "FrameFaces",
    "KeyNotHeldPolicy",
    "SealedFaceOpener",
    "key_ring",
    "paste_exact",
]

log = logging.getLogger(__name__)

KeyNotHeldPolicy = Literal["ud", "error"]
#: Why a face went through ``Ud``.
UD_REASONS = ("no_payload", "not_in_payload", "key_not_held")
#: Per-face entries a report keeps (the counts cover every face; the rest is counted omitted).
MAX_FACE_ENTRIES = 1000


def key_ring(keys: Iterable[SealingPrivateKey]) -> dict[str, SealingPrivateKey]:
    """The keys by key id (a key given twice is held once)."""
    return {key.key_id: key for key in keys}


@dataclass(frozen=True)
class FrameFaces:
    """What one frame's sealed payload gave.

    Attributes:
        exact: box index -> the original ``h x w x 3`` RGB pixels of that box.
        codecs: box index -> the codec the face travelled in (``png`` is bit-exact).
        ud: box index -> why that face goes through ``Ud`` (:data:`UD_REASONS`).
        key_id: the private key that opened the payload (``None``: none did).
        missing_key_ids: the payload's recipients when none of them is held.
        mac_verified: the camera key's HMAC over the payload was checked.
    """

    exact: dict[int, np.ndarray] = field(default_factory=dict)
    codecs: dict[int, str] = field(default_factory=dict)
    ud: dict[int, str] = field(default_factory=dict)
    key_id: str | None = None
    missing_key_ids: tuple[str, ...] = ()
    mac_verified: bool = False

    def ud_boxes(self, boxes: Sequence[Box]) -> tuple[Box, ...]:
        """The boxes whose faces go through ``Ud``."""
        return tuple(box for i, box in enumerate(boxes) if i not in self.exact)

    def exact_pastes(self, boxes: Sequence[Box]) -> list[tuple[Box, np.ndarray]]:
        """(box, original pixels) of each face that opened."""
        return [(boxes[i], pixels) for i, pixels in sorted(self.exact.items())]

    def vouches_for(self, message: RoiMessage) -> bool:
        """Whether this payload authenticates ``message`` on its own: its HMAC verified with the
        camera's key and every box of the message opened from it (module docstring)."""
        return self.mac_verified and len(self.exact) == len(message.boxes)


def paste_exact(frame: np.ndarray, pastes: Sequence[tuple[Box, np.ndarray]]) -> None:
    """Write each face's original pixels over its whole box, in place (after any ``Ud`` paste).

    Raises:
        shared.geometry.BoxOutsideFrameError: a box is not inside the frame.
    """
    for box, pixels in pastes:
        crop(frame, box)[...] = pixels


class SealedFaceOpener:
    """Opens the sealed faces of frames with the held private keys and the cameras' keys.

    Args:
        private_keys: the authority's sealing keys (by key id, or any iterable of them).
        camera_keys: camera id -> HMAC key (the message keys; a payload of a camera without
            one opens unauthenticated).
        on_key_not_held: ``ud`` (the faces of a payload sealed only to keys not held go through
            ``Ud``) or ``error`` (:class:`SealingKeyNotHeldError`).
    """

    def __init__(
        self,
        private_keys: Mapping[str, SealingPrivateKey] | Iterable[SealingPrivateKey] = (),
        camera_keys: Mapping[str, bytes] | None = None,
        *,
        on_key_not_held: KeyNotHeldPolicy = "ud",
    ) -> None:
        if on_key_not_held not in ("ud", "error"):
            raise ValueError(f"on_key_not_held must be 'ud' or 'error', got {on_key_not_held!r}")
        keys = private_keys.values() if isinstance(private_keys, Mapping) else private_keys
        self.private_keys = key_ring(keys)
        self.camera_keys = dict(camera_keys or {})
        self.on_key_not_held = on_key_not_held

    def __getstate__(self) -> dict[str, object]:
        """Pickled with its private keys as raw bytes: only for the segment worker processes
        this service starts (:mod:`authority_service.parallel`), which get it through a pipe
        when they start, never through a file."""
        state = dict(self.__dict__)
        state["private_keys"] = {
            key_id: key.key.private_bytes_raw() for key_id, key in self.private_keys.items()
        }
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        raw = state.pop("private_keys")
        assert isinstance(raw, dict)
        self.__dict__.update(state)
        self.private_keys = key_ring(
            SealingPrivateKey.of(x25519.X25519PrivateKey.from_private_bytes(b))
            for b in raw.values()
        )

    @property
    def key_ids(self) -> list[str]:
        """The key ids of the held private keys (never the keys)."""
        return sorted(self.private_keys)

    def open(self, message: RoiMessage, frame: int) -> FrameFaces:
        """The faces ``message``'s payload gives back; ``frame`` (the index in the clip) names
        the frame in errors.

        Raises:
            SealedFacesError: the payload is malformed, fails authentication or holds an
                undecodable face.
            SealingKeyNotHeldError: sealed only to keys not held, with ``on_key_not_held``
                ``error``.
        """
        boxes = message.boxes
        if message.sealed is None:
            return FrameFaces(ud=dict.fromkeys(range(len(boxes)), "no_payload"))
        assert message.camera_id is not None and message.model_id is not None
        context = SealContext.of(message)
        camera_key = self.camera_keys.get(message.camera_id)
        try:
            opened = open_sealed_faces(
                message.sealed, boxes, context, self.private_keys, camera_key
            )
        except KeyNotHeldError as exc:
            if self.on_key_not_held == "error":
                raise SealingKeyNotHeldError(
                    f"frame {frame}: {exc}; this authority holds "
                    f"{', '.join(self.key_ids) or 'no sealing key'}",
                    frame=frame,
                    key_ids=list(exc.key_ids),
                ) from exc
            log.debug("frame %d: %s; its faces go through Ud", frame, exc)  # counted per clip
            return FrameFaces(
                ud=dict.fromkeys(range(len(boxes)), "key_not_held"),
                missing_key_ids=exc.key_ids,
                mac_verified=camera_key is not None,
            )
        except SealedPayloadError as exc:
            reason = (
                "malformed"
                if isinstance(exc, MalformedPayloadError)
                else "undecodable"
                if isinstance(exc, FaceDecodeError)
                else "forged"
            )
            raise SealedFacesError(
                f"frame {frame}: the sealed faces of its message do not open ({reason}): {exc}",
                frame=frame,
                field=exc.field,
                reason=reason,
            ) from exc
        not_in = {i: "not_in_payload" for i in range(len(boxes)) if i not in opened.faces}
        return FrameFaces(
            exact=opened.faces,
            codecs=opened.codecs,
            ud=not_in,
            key_id=opened.key_id,
            mac_verified=opened.mac_verified,
        )


@dataclass
class FaceMethods:
    """How the faces of a clip (or one frame) were reversed: counts, reasons, keys, and a
    bounded per-face list.

    Attributes:
        sealed: faces pasted back from their sealed originals.
        ud: faces reversed by ``Ud``.
        ud_reasons: reason (:data:`UD_REASONS`) -> how many of the ``ud`` faces.
        key_ids: the private keys that opened payloads.
        missing_key_ids: keys that payloads were sealed to, none of them held here.
        faces: one entry per face, ``{"frame", "box", "method"}`` plus ``"codec"`` (sealed) or
            ``"reason"`` (ud), the first :data:`MAX_FACE_ENTRIES` of the clip.
        faces_omitted: faces past that limit (counted above, not listed).
    """

    sealed: int = 0
    ud: int = 0
    ud_reasons: dict[str, int] = field(default_factory=dict)
    key_ids: list[str] = field(default_factory=list)
    missing_key_ids: list[str] = field(default_factory=list)
    faces: list[dict[str, object]] = field(default_factory=list)
    faces_omitted: int = 0

    def add(self, frame: int, faces: FrameFaces, boxes: Sequence[Box]) -> None:
        """Count the faces of frame ``frame`` (its message's ``boxes``)."""
        for key_id in ([faces.key_id] if faces.key_id else []) + list(faces.missing_key_ids):
            into = self.key_ids if key_id == faces.key_id else self.missing_key_ids
            if key_id not in into:
                into.append(key_id)
        for index in range(len(boxes)):
            entry: dict[str, object] = {"frame": frame, "box": index}
            if index in faces.exact:
                self.sealed += 1
                entry.update(method="sealed", codec=faces.codecs.get(index, ""))
            else:
                reason = faces.ud.get(index, "no_payload")
                self.ud += 1
                self.ud_reasons[reason] = self.ud_reasons.get(reason, 0) + 1
                entry.update(method="ud", reason=reason)
            if len(self.faces) < MAX_FACE_ENTRIES:
                self.faces.append(entry)
            else:
                self.faces_omitted += 1

    def merge(self, later: FaceMethods) -> None:
        """Add the faces of ``later``, counted over the frames after this one's: what
        :meth:`add` over all those frames gives (counts summed, keys and reasons in the order
        first seen, the per-face list the first :data:`MAX_FACE_ENTRIES`)."""
        self.sealed += later.sealed
        self.ud += later.ud
        for reason, count in later.ud_reasons.items():
            self.ud_reasons[reason] = self.ud_reasons.get(reason, 0) + count
        for into, key_ids in (
            (self.key_ids, later.key_ids),
            (self.missing_key_ids, later.missing_key_ids),
        ):
            for key_id in key_ids:
                if key_id not in into:
                    into.append(key_id)
        room = max(0, MAX_FACE_ENTRIES - len(self.faces))
        self.faces.extend(later.faces[:room])
        self.faces_omitted += later.faces_omitted + max(0, len(later.faces) - room)

    def detail(self) -> str:
        """One line for the audit record: ``faces: 3 sealed (key ...), 1 ud (...)``."""
        text = f"faces: {self.sealed} sealed"
        if self.key_ids:
            text += f" (key {', '.join(self.key_ids)})"
        text += f", {self.ud} ud"
        if self.ud_reasons:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.ud_reasons.items()))
            text += f" ({reasons})"
        if self.missing_key_ids:
            text += f"; sealed to keys not held: {', '.join(self.missing_key_ids)}"
        return text
