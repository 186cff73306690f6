"""Reverse the de-identification of frames and clips: read, verify, crop, Ud, paste, encode.

Per frame:

1. **read** the ROI message (:class:`MessageSource`): from the frame's least significant bits
   (:class:`LsbMessageSource`, lossless evidence) or from the H.264 SEI units of a lossy public
   stream (:class:`SeiMessageSource`), the source chosen once per clip (:class:`ClipMessages`);
2. **verify** it: grammar and box bounds, the v1 HMAC tag with the camera's key when the
   authority holds it (a bad tag is a *forged* message), and the model id it names;
3. **crop** exactly the message's boxes, resize each to the model size that the model's
   composition picks for it (``shared.compositing``, the card of the model the message names:
   the same size and kernels as the edge's paste), **run Ud** batched (faces of several frames
   share one ONNX Runtime call per size, up to ``max_batch``), and **paste** ``r`` back with the
   model's feathered mask, enlarged with bicubic interpolation whatever the model's own mode
   (for round-1 models, whose edge replicated pixels, bicubic measured +2.7 to +3.7 dB PSNR
   over bilinear and +6 dB over nearest on 300 UTKFace crops at 80-150 px).

A frame without a message passes through unchanged and is counted. Any frame with a malformed,
forged or unverifiable message, or one naming a model the authority lacks, fails the whole
clip with a typed error naming the frame: evidence is reversed completely or not at all.

Authentication is required by default (``require_authentication=True``, the setting
``messages.require_authentication``): a message that cannot be verified, i.e. a paper-format one,
a v1 one of a camera whose key the authority lacks, or one read from SEI, is refused with
:class:`~authority_service.errors.UnauthenticatedMessageError`. Only with
``require_authentication=False`` are such messages accepted, as *unverified*: counted in
``ClipReport.unverified_frames`` (``ImageResult.verified`` for a frame), which the callers put
in the audit record.

Messages from a lossy stream (SEI) cannot be authenticated by their tag: a v1 tag is an HMAC
over the frame's lossless pixels (LSB plane cleared), which a lossy stream no longer has. So an
SEI message is *verified* only by a sealed-faces payload that holds every one of its faces and
whose HMAC verified with the camera's key (:mod:`authority_service.sealed`); otherwise, with
``require_authentication`` it is refused (pointing to the lossless evidence), and without it it
is accepted as unverified. The report names the source (``message_source: "sei"``). Its ``Ud``
reconstruction is approximate: ``Ud`` inverts ``Ue`` on the lossy pixels, not the ones ``Ue``
produced.

Faces whose original pixels travel sealed in the message (``S1:`` field) are opened with the
authority's private keys and pasted back exactly, after the ``Ud`` pastes of the frame's other
faces; each face is counted by method (``sealed`` / ``ud``) and, for ``ud``, by reason
(:mod:`authority_service.sealed`, the report's ``faces_by_method``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import av
import numpy as np

from authority_service.decoders import Decoder, DecoderRegistry
from authority_service.errors import (
    ClipError,
    CorruptVideoError,
    ForgedMessageError,
    MalformedMessageError,
    NoMessageError,
    UnauthenticatedMessageError,
)
from authority_service.media import inspect_clip
from authority_service.pipeline import BackgroundConsumer, prefetch
from authority_service.sealed import FaceMethods, FrameFaces, SealedFaceOpener, paste_exact
from shared import stego
from shared.compositing import LEGACY, Composition, group_by_size
from shared.frame_seal import open_frame
from shared.geometry import Box
from shared.private_files import PRIVATE_FILE_MODE
from shared.roi_message import (
    MessageAuthenticationError,
    RoiMessage,
    RoiMessageError,
    parse_message,
)
from shared.sei import SeiError, parse_sei_payload
from shared.video_io import (
    LosslessWriter,
    VideoDecodeError,
    VideoFrame,
    expected_frames,
    missing_frames,
    read_frames,
)

__all__ = [
    "RESULT_SUFFIX",
    "ClipMessages",
    "ClipReport",
    "FrameMessage",
    "ImageResult",
    "LsbMessageSource",
    "MessageSource",
    "ReconstructionCancelledError",
    "Reconstructor",
    "SeiMessageSource",
    "message_sources",
    "paste_reconstruction",
    "reverse_faces",
]

log = logging.getLogger(__name__)

ResultCodec = Literal["ffv1", "libx264rgb"]
#: File suffix and container of a reconstructed clip per codec.
RESULT_SUFFIX: dict[str, str] = {"ffv1": ".mkv", "libx264rgb": ".mp4"}
_CONTAINER: dict[str, str] = {"ffv1": "matroska", "libx264rgb": "mp4"}
# Text that announces an ROI message: a version prefix, or the paper's "<count>,".
_ANNOUNCES_MESSAGE = re.compile(r"UU|[0-9]{1,9},")
_MAX_WINDOW_FRAMES = 16


class ReconstructionCancelledError(RuntimeError):
    """The caller asked the clip reconstruction to stop (service shutting down)."""


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
    """

    def __init__(self, sources: Sequence[MessageSource]) -> None:
        if not sources:
            raise ValueError("at least one message source is needed")
        self.sources = list(sources)
        self.chosen: MessageSource | None = None

    def open(self, frame: VideoFrame) -> FrameMessage | None:
        """The frame's message (see :meth:`MessageSource.open` for what is raised)."""
        if self.chosen is None:
            self.chosen = next((s for s in self.sources if s.carries(frame)), None)
            if self.chosen is None:
                return None
            log.debug("frame %d: reading ROI messages from %s", frame.index, self.chosen.name)
        return self.chosen.open(frame)


def paste_reconstruction(
    frame: np.ndarray,
    batch: np.ndarray,
    boxes: Sequence[Box],
    composition: Composition = LEGACY,
) -> None:
    """Paste Ud's output (``N x 3 x S x S`` in [0, 1]) into ``frame`` at ``boxes``, in place,
    with the model's feathered mask; enlarging is bicubic, shrinking area averaging.

    Raises:
        ValueError: batch and box counts differ.
        shared.geometry.BoxOutsideFrameError: a box is not inside the frame.
    """
    composition.paste(frame, batch, boxes, resample="smooth")


def reverse_faces(
    decoder: Decoder, frames: Sequence[np.ndarray], boxes: Sequence[Sequence[Box]]
) -> None:
    """Reverse the faces of several frames (in place) with one decoder: every ROI is cropped
    first, then ``Ud`` runs once per model size over all of them, then ``r`` is pasted.

    Raises:
        shared.geometry.BoxOutsideFrameError: a box is not inside its frame.
        shared.onnx_runner.ModelRunError: ``Ud`` failed.
    """
    composition = decoder.card.composition
    flat = [(f, box) for f, frame_boxes in enumerate(boxes) for box in frame_boxes]
    groups = group_by_size(composition, [box for _, box in flat])
    outputs = []
    for size, members in groups.items():
        crops = np.concatenate(
            [composition.crops(frames[flat[i][0]], [flat[i][1]], size) for i in members]
        )
        outputs.append((members, decoder.model(crops)))
    for members, out in outputs:
        for k, i in enumerate(members):
            f, box = flat[i]
            paste_reconstruction(frames[f], out[k : k + 1], [box], composition)


@dataclass(frozen=True)
class ImageResult:
    """A reconstructed single frame."""

    rgb: np.ndarray
    message: RoiMessage
    verified: bool
    model_id: str | None
    faces_by_method: FaceMethods = field(default_factory=FaceMethods)


@dataclass
class ClipReport:
    """What a clip reconstruction did (stored with the job, returned by the API)."""

    frames: int = 0
    frames_reconstructed: int = 0
    frames_with_message: int = 0
    frames_without_message: int = 0
    faces: int = 0
    verified_frames: int = 0
    unverified_frames: int = 0
    message_source: str = ""
    model_ids: list[str] = field(default_factory=list)
    camera_ids: list[str] = field(default_factory=list)
    message_versions: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    width: int = 0
    height: int = 0
    fps: float = 0.0
    source_codec: str = ""
    result_codec: str = ""
    seconds: float = 0.0
    faces_by_method: FaceMethods = field(default_factory=FaceMethods)

    def count(self, opened: FrameMessage | None, decoder: Decoder | None) -> None:
        self.frames += 1
        if opened is None:
            self.frames_without_message += 1
            return
        message = opened.message
        self.frames_with_message += 1
        if message.boxes:
            self.frames_reconstructed += 1
            self.faces += len(message.boxes)
        if opened.verified:
            self.verified_frames += 1
        else:
            self.unverified_frames += 1
        for values, value in (
            (self.model_ids, decoder.model_id if decoder else None),
            (self.camera_ids, message.camera_id),
            (self.message_versions, message.version),
            (self.run_ids, message.run_id),
        ):
            if value is not None and value not in values:
                values.append(value)


@dataclass
class _Pending:
    frame: VideoFrame
    boxes: tuple[Box, ...]  # those Ud reverses
    decoder: Decoder | None
    exact: list[tuple[Box, np.ndarray]]  # pasted after Ud


class Reconstructor:
    """Reverses frames and clips with the decoders of ``decoders``.

    Args:
        decoders: where Ud sessions come from, by model id.
        messages: the message carriers to read, in order of preference (one per clip is chosen,
            :class:`ClipMessages`); :func:`message_sources` gives LSB then SEI.
        max_batch: faces per Ud call (batched across up to 16 frames).
        sealed: opens the messages' sealed faces (default: no private key held, so every
            payload is checked but its faces go through Ud).
    """

    def __init__(
        self,
        decoders: DecoderRegistry,
        messages: MessageSource | Sequence[MessageSource],
        *,
        max_batch: int = 32,
        sealed: SealedFaceOpener | None = None,
    ) -> None:
        self.decoders = decoders
        self.sources: list[MessageSource] = (
            list(messages) if isinstance(messages, Sequence) else [messages]
        )
        if not self.sources:
            raise ValueError("at least one message source is needed")
        self.max_batch = max_batch
        self.sealed = sealed if sealed is not None else SealedFaceOpener()

    def _faces_for(self, opened: FrameMessage, index: int) -> FrameFaces:
        """The frame's sealed faces (see :meth:`SealedFaceOpener.open` for what is raised)."""
        return opened.faces if opened.faces is not None else self.sealed.open(opened.message, index)

    def _decoder_for(self, opened: FrameMessage | None) -> Decoder | None:
        if opened is None or not opened.message.boxes:
            return None  # nothing to reverse: no decoder needed
        return self.decoders.for_model(opened.message.model_id)

    def reconstruct_image(self, rgb: np.ndarray) -> ImageResult:
        """Reverse one frame (``H x W x 3`` RGB uint8).

        Raises:
            NoMessageError: the frame carries no ROI message.
            MalformedMessageError / ForgedMessageError / UnauthenticatedMessageError.
            UnknownModelError / ModelUnavailableError: no decoder for the message.
            SealedFacesError / SealingKeyNotHeldError: its sealed faces do not open.
        """
        opened = ClipMessages(self.sources).open(VideoFrame(0, rgb, None))
        if opened is None:
            raise NoMessageError("the frame carries no ROI message: there is nothing to reverse")
        decoder = self._decoder_for(opened)
        faces, boxes = self._faces_for(opened, 0), opened.message.boxes
        out = rgb.copy()
        if decoder is not None and faces.ud_boxes(boxes):
            reverse_faces(decoder, [out], [faces.ud_boxes(boxes)])
        paste_exact(out, faces.exact_pastes(boxes))
        methods = FaceMethods()
        methods.add(0, faces, boxes)
        return ImageResult(
            out, opened.message, opened.verified, decoder.model_id if decoder else None, methods
        )

    def _reverse(self, window: list[_Pending]) -> None:
        """Run Ud once per model over the window's faces and paste into its frames."""
        by_model: dict[str, list[_Pending]] = {}
        for item in window:
            if item.decoder is not None:
                by_model.setdefault(item.decoder.model_id, []).append(item)
        for items in by_model.values():
            decoder = items[0].decoder
            assert decoder is not None
            reverse_faces(decoder, [i.frame.rgb for i in items], [i.boxes for i in items])

    def reconstruct_clip(
        self,
        source: Path,
        destination: Path,
        *,
        codec: ResultCodec = "ffv1",
        fallback_to_ffv1: bool = False,
        progress: Callable[[int, int | None], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        on_frame: Callable[[int, Sequence[Box] | None, FrameFaces], None] | None = None,
    ) -> ClipReport:
        """Reverse every frame of ``source`` into the lossless clip ``destination``.

        ``destination`` is written in ``codec``'s container (Matroska for FFV1, MP4 for
        libx264rgb) whatever its suffix. libx264rgb needs even frame sizes: with
        ``fallback_to_ffv1`` an odd-sized clip is written as FFV1 instead (the report's
        ``result_codec`` says which), otherwise that is a ``ValueError``.
        ``progress(frames_done, frames_expected)`` is called after each batch; ``cancelled()``
        is polled per frame. ``on_frame(index, boxes, faces)`` is called for every frame as it
        is read, before its faces are reversed: the message's boxes (``None``: the frame carries
        no message) and what its sealed payload gave (which boxes open exactly, why the others
        go through ``Ud``), e.g. :class:`authority_service.face_sidecar.FaceSidecarWriter`.
        On any error ``destination`` is removed.

        Raises:
            NotAVideoError / CorruptVideoError: the clip cannot be read, fails part-way, or has
                fewer frames than its container declares (truncated).
            UnsupportedFrameSizeError: its frames are under ``media.MIN_FRAME_SIDE`` a side.
            NoMessageError: no frame carries a message.
            MalformedMessageError / ForgedMessageError / UnauthenticatedMessageError /
                UnknownModelError / ModelUnavailableError / SealedFacesError /
                SealingKeyNotHeldError: a frame's message (named in ``extra["frame"]``).
            ReconstructionCancelledError: ``cancelled()`` returned true.
            ValueError: libx264rgb asked for an odd-sized clip without ``fallback_to_ffv1``.
        """
        started = time.perf_counter()
        info = inspect_clip(source)
        expected = expected_frames(info)
        if codec == "libx264rgb" and (info.width % 2 or info.height % 2):
            if not fallback_to_ffv1:
                raise ValueError(
                    f"H.264 RGB needs even frame sizes, the clip is {info.width}x{info.height}: "
                    "write it as FFV1 (.mkv)"
                )
            codec = "ffv1"
        report = ClipReport(
            width=info.width,
            height=info.height,
            fps=float(info.fps),
            source_codec=info.codec,
            result_codec=codec,
        )
        writer = LosslessWriter(
            destination,
            info.width,
            info.height,
            info.fps,
            codec=codec,
            container_format=_CONTAINER[codec],
            file_mode=PRIVATE_FILE_MODE,  # original faces: only the service user reads them
        )
        encoder: BackgroundConsumer[np.ndarray] = BackgroundConsumer(
            writer.write, depth=_MAX_WINDOW_FRAMES, name="encode"
        )
        messages = ClipMessages(self.sources)
        frames = prefetch(read_frames(source), depth=8, name="decode")
        try:
            window: list[_Pending] = []
            faces = 0
            for frame in frames:
                if cancelled is not None and cancelled():
                    raise ReconstructionCancelledError("reconstruction cancelled")
                try:
                    opened = messages.open(frame)
                    decoder = self._decoder_for(opened)
                    sealed = self._faces_for(opened, frame.index) if opened else FrameFaces()
                except ClipError as exc:
                    exc.extra.setdefault("frame", frame.index)
                    raise
                report.count(opened, decoder)
                all_boxes = opened.message.boxes if opened else ()
                report.faces_by_method.add(frame.index, sealed, all_boxes)
                if on_frame is not None:
                    on_frame(frame.index, all_boxes if opened else None, sealed)
                boxes = sealed.ud_boxes(all_boxes) if decoder is not None else ()
                exact = sealed.exact_pastes(all_boxes)
                window.append(_Pending(frame, boxes, decoder if boxes else None, exact))
                faces += len(boxes)
                if faces >= self.max_batch or len(window) >= _MAX_WINDOW_FRAMES:
                    self._flush(window, encoder, report, expected, progress)
                    faces = 0
            self._flush(window, encoder, report, expected, progress)
            encoder.close()
            writer.close()
        except VideoDecodeError as exc:
            self._discard(encoder, writer, destination)
            log.warning(
                "clip %s: decoding failed after %d frames: %s", source.name, report.frames, exc
            )
            raise CorruptVideoError(  # the cause names the server's file: logged, not returned
                f"the clip cannot be decoded past frame {report.frames} (truncated or damaged)",
                frame=report.frames,
            ) from exc
        except BaseException:
            self._discard(encoder, writer, destination)
            raise
        finally:
            frames.close()
        if missing_frames(info, report.frames):
            destination.unlink(missing_ok=True)
            raise CorruptVideoError(
                f"the clip is truncated: its container declares {expected} frames but only "
                f"{report.frames} decode",
                frames=report.frames,
                expected=expected,
            )
        if report.frames_with_message == 0:
            destination.unlink(missing_ok=True)
            raise NoMessageError(
                f"none of the clip's {report.frames} frames carries an ROI message: it is not a "
                "de-identified recording (or its messages were destroyed by lossy encoding)",
                frames=report.frames,
            )
        report.message_source = messages.chosen.name if messages.chosen else ""
        report.seconds = time.perf_counter() - started
        return report

    def _flush(
        self,
        window: list[_Pending],
        encoder: BackgroundConsumer[np.ndarray],
        report: ClipReport,
        expected: int | None,
        progress: Callable[[int, int | None], None] | None,
    ) -> None:
        if not window:
            return
        self._reverse(window)
        for item in window:
            paste_exact(item.frame.rgb, item.exact)  # after Ud: never under a neighbour's paste
            encoder.put(item.frame.rgb)
        window.clear()
        if progress is not None:
            progress(report.frames, expected)

    @staticmethod
    def _discard(
        encoder: BackgroundConsumer[np.ndarray], writer: LosslessWriter, destination: Path
    ) -> None:
        encoder.abandon()
        try:
            writer.close()
        except (OSError, ValueError, av.FFmpegError) as exc:
            log.debug("closing a discarded output failed: %s", exc)
        destination.unlink(missing_ok=True)
