"""The ROI messages of a clip's frames: read from one carrier, parsed and verified.

Each decoded frame's message is read (:class:`MessageSource`) from its least significant bits
(:class:`LsbMessageSource`, lossless evidence) or from the H.264 SEI units of a lossy public
stream (:class:`SeiMessageSource`), the carrier chosen once per clip (:class:`ClipMessages`),
and **verified**: grammar and box bounds, the v1 HMAC tag with the camera's key when the
authority holds it (a bad tag is a *forged* message). Which model the message names is the
reconstructor's business (:mod:`authority_service.reconstruction`).

Authentication is required by default (``require_authentication=True``, the setting
``messages.require_authentication``): a message that cannot be verified, i.e. a paper-format one,
a v1 one of a camera whose key the authority lacks, or one read from SEI, is refused with
:class:`~authority_service.errors.UnauthenticatedMessageError`. Only with
``require_authentication=False`` are such messages accepted, as *unverified* (``verified`` of
:class:`FrameMessage`), which the clip report counts.

Messages from a lossy stream (SEI) cannot be authenticated by their tag: a v1 tag is an HMAC
over the frame's lossless pixels (LSB plane cleared), which a lossy stream no longer has. So an
SEI message is *verified* only by a sealed-faces payload that holds every one of its faces and
whose HMAC verified with the camera's key (:mod:`authority_service.sealed`); otherwise, with
``require_authentication`` it is refused (pointing to the lossless evidence), and without it it
is accepted as unverified.

The sources hold plain data (keys, flags, the sealed-face opener), so they pickle: the segment
workers of :mod:`authority_service.parallel` get them once, when they start.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from authority_service.errors import (
    ForgedMessageError,
    MalformedMessageError,
    UnauthenticatedMessageError,
)
from authority_service.sealed import FrameFaces, SealedFaceOpener
from shared import stego
from shared.frame_seal import open_frame
from shared.roi_message import (
    MessageAuthenticationError,
    RoiMessage,
    RoiMessageError,
    parse_message,
)
from shared.sei import SeiError, parse_sei_payload
from shared.video_io import VideoFrame

__all__ = [
    "ClipMessages",
    "FrameMessage",
    "LsbMessageSource",
    "MessageSource",
    "SeiMessageSource",
    "message_sources",
]

log = logging.getLogger(__name__)

# Text that announces an ROI message: a version prefix, or the paper's "<count>,".
_ANNOUNCES_MESSAGE = re.compile(r"UU|[0-9]{1,9},")


@dataclass(frozen=True)
class FrameMessage:
    """A frame's parsed message and whether it was verified with the camera's key (its tag, or
    for SEI its sealed payload); ``faces``: that payload, when the carrier opened it to verify."""

    message: RoiMessage
    verified: bool
    faces: FrameFaces | None = None


class MessageSource(Protocol):
    """Reads and checks the ROI message carried by one decoded frame (one carrier: LSB, SEI)."""

    #: What the clip report calls this source (``"lsb"``, ``"sei"``).
    name: str

    def carries(self, frame: VideoFrame) -> bool:
        """Whether the frame holds something announcing a message in this carrier (cheap; it
        says nothing about the message being valid)."""

    def open(self, frame: VideoFrame) -> FrameMessage | None:
        """The frame's message, or ``None`` when it carries none.

        Raises:
            MalformedMessageError, ForgedMessageError, UnauthenticatedMessageError.
        """


class LsbMessageSource:
    """Messages hidden in the frame's least significant bits (lossless evidence).

    LSB text that does not announce a message (neither ``UU...`` nor ``<count>,``) is taken as
    no message: the LSBs of an ordinary frame are noise, and noise now and then starts with a
    ``"<n>:"`` length prefix. Text that does announce one must parse and verify.
    """

    name = "lsb"

    def __init__(
        self, camera_keys: Mapping[str, bytes], *, require_authentication: bool = True
    ) -> None:
        self.camera_keys = dict(camera_keys)
        self.require_authentication = require_authentication

    def carries(self, frame: VideoFrame) -> bool:
        try:
            text = stego.extract(frame.rgb)
        except stego.NoMessageError:
            return False
        return bool(_ANNOUNCES_MESSAGE.match(text))

    def open(self, frame: VideoFrame) -> FrameMessage | None:
        if not self.carries(frame):
            return None
        try:
            message = open_frame(
                frame.rgb, self.camera_keys, require_authentication=self.require_authentication
            )
        except MessageAuthenticationError as exc:
            if exc.field == "tag":
                raise ForgedMessageError(
                    f"frame {frame.index}: {exc}", frame=frame.index, field=exc.field
                ) from exc
            raise UnauthenticatedMessageError(
                f"frame {frame.index}: {exc}", frame=frame.index, field=exc.field
            ) from exc
        except RoiMessageError as exc:
            raise MalformedMessageError(
                f"frame {frame.index}: the ROI message is malformed: {exc}",
                frame=frame.index,
                field=exc.field,
            ) from exc
        verified = message.version == "1" and message.camera_id in self.camera_keys
        return FrameMessage(message, verified)


class SeiMessageSource:
    """Messages in the H.264 SEI units of a lossy public stream (:mod:`shared.sei`), as
    :func:`shared.video_io.read_frames` collects them per frame.

    The message is parsed and its boxes checked against the frame. It is verified only by its
    sealed payload (opened with ``sealed``, module docstring of :mod:`authority_service.sealed`);
    otherwise, with ``require_authentication`` it is refused, without it it is returned with
    ``verified=False``.
    """

    name = "sei"

    def __init__(
        self, *, require_authentication: bool = True, sealed: SealedFaceOpener | None = None
    ) -> None:
        self.require_authentication = require_authentication
        self.sealed = sealed

    def carries(self, frame: VideoFrame) -> bool:
        return bool(frame.sei)

    def open(self, frame: VideoFrame) -> FrameMessage | None:
        if not frame.sei:
            return None
        if len(frame.sei) > 1:
            raise MalformedMessageError(
                f"frame {frame.index}: {len(frame.sei)} ROI messages in its SEI units, expected "
                "one",
                frame=frame.index,
                field="sei",
            )
        height, width = frame.rgb.shape[:2]
        try:
            message = parse_message(parse_sei_payload(frame.sei[0]), (width, height))
        except (RoiMessageError, SeiError) as exc:
            raise MalformedMessageError(
                f"frame {frame.index}: the ROI message in its SEI is malformed: {exc}",
                frame=frame.index,
                field=getattr(exc, "field", "sei"),
            ) from exc
        faces = self.sealed.open(message, frame.index) if self.sealed is not None else None
        verified = faces is not None and faces.vouches_for(message)
        if self.require_authentication and not verified:
            raise UnauthenticatedMessageError(
                f"frame {frame.index}: the ROI message comes from the SEI of a lossy stream and "
                "cannot be authenticated (its tag covers the lossless pixels, and no sealed "
                "payload verified with the camera's key holds all its faces); reverse the "
                "camera's lossless evidence recording instead",
                frame=frame.index,
                field="sei",
            )
        return FrameMessage(message, verified, faces)


def message_sources(
    camera_keys: Mapping[str, bytes],
    *,
    require_authentication: bool = True,
    sealed: SealedFaceOpener | None = None,
) -> list[MessageSource]:
    """The carriers the authority reads, in order of preference: LSB, then SEI (which
    ``sealed`` lets verify a message by its sealed payload)."""
    return [
        LsbMessageSource(camera_keys, require_authentication=require_authentication),
        SeiMessageSource(require_authentication=require_authentication, sealed=sealed),
    ]


class ClipMessages:
    """Reads the messages of one clip from one carrier, chosen on the clip's first frame that
    carries a message: the first of ``sources`` that carries one there (LSB before SEI, so a
    lossless recording is always read, and verified, from its pixels). Later frames are read
    from that carrier only; what another carrier holds is ignored. Not thread-safe: one per clip.

    ``carrier`` (a source's ``name``) fixes the carrier from the start: a segment of a clip
    whose carrier an earlier segment chose (:mod:`authority_service.parallel`). A frame that
    carries nothing in it reads as no message, as it would once the carrier is chosen.

    Raises:
        ValueError: no sources, or none named ``carrier``.
    """

    def __init__(self, sources: Sequence[MessageSource], carrier: str | None = None) -> None:
        if not sources:
            raise ValueError("at least one message source is needed")
        self.sources = list(sources)
        self.chosen: MessageSource | None = None
        if carrier is not None:
            self.chosen = next((s for s in self.sources if s.name == carrier), None)
            if self.chosen is None:
                raise ValueError(f"no message source named {carrier!r}")

    def open(self, frame: VideoFrame) -> FrameMessage | None:
        """The frame's message (see :meth:`MessageSource.open` for what is raised)."""
        if self.chosen is None:
            self.chosen = next((s for s in self.sources if s.carries(frame)), None)
            if self.chosen is None:
                return None
            log.debug("frame %d: reading ROI messages from %s", frame.index, self.chosen.name)
        return self.chosen.open(frame)
