"""Reverse the de-identification of frames and clips: read, verify, crop, Ud, paste, encode.

Per frame:

1. **read** the ROI message and **verify** it (:mod:`authority_service.messages`: from the
   frame's least significant bits or the H.264 SEI of a lossy stream, one carrier per clip;
   grammar, box bounds and the v1 HMAC tag), and check the model id it names;
2. **crop** exactly the message's boxes, resize each to the model size that the model's
   composition picks for it (``shared.compositing``, the card of the model the message names:
   the same size and kernels as the edge's paste), **run Ud** batched (faces of several frames
   share one ONNX Runtime call per size, up to ``max_batch``), and **paste** ``r`` back with the
   model's feathered mask, enlarged with bicubic interpolation whatever the model's own mode
   (for round-1 models, whose edge replicated pixels, bicubic measured +2.7 to +3.7 dB PSNR
   over bilinear and +6 dB over nearest on 300 UTKFace crops at 80-150 px).

A frame without a message passes through unchanged and is counted. Any frame with a malformed,
forged or unverifiable message, or one naming a model the authority lacks, fails the whole
clip with a typed error naming the frame: evidence is reversed completely or not at all.
Unverified messages (accepted only with ``require_authentication=False``) are counted in
``ClipReport.unverified_frames`` (``ImageResult.verified`` for a frame), which the callers put
in the audit record; the report names the carrier (``message_source``: ``"lsb"``, ``"sei"``).
An SEI message's ``Ud`` reconstruction is approximate: ``Ud`` inverts ``Ue`` on the lossy
pixels, not the ones ``Ue`` produced.

Faces whose original pixels travel sealed in the message (``S1:`` field) are opened with the
authority's private keys and pasted back exactly, after the ``Ud`` pastes of the frame's other
faces; each face is counted by method (``sealed`` / ``ud``) and, for ``ud``, by reason
(:mod:`authority_service.sealed`, the report's ``faces_by_method``).

:meth:`Reconstructor.reconstruct_clip` reverses a clip in one pass; a long clip can be split
into segments reversed by worker processes and joined, with the same result
(:mod:`authority_service.parallel`, :mod:`authority_service.segments`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from authority_service.clip_checks import (
    CONTAINER,
    RESULT_SUFFIX,
    ResultCodec,
    finish_clip,
    prepare_clip,
)
from authority_service.clip_report import ClipReport
from authority_service.decoders import Decoder, DecoderRegistry
from authority_service.errors import ClipError, CorruptVideoError, NoMessageError
from authority_service.messages import (
    ClipMessages,
    FrameMessage,
    LsbMessageSource,
    MessageSource,
    SeiMessageSource,
    message_sources,
)
from authority_service.pipeline import BackgroundConsumer, prefetch
from authority_service.sealed import FaceMethods, FrameFaces, SealedFaceOpener, paste_exact
from shared.compositing import LEGACY, Composition, group_by_size
from shared.geometry import Box
from shared.private_files import PRIVATE_FILE_MODE
from shared.roi_message import RoiMessage
from shared.video_io import (
    LosslessWriter,
    VideoDecodeError,
    VideoFrame,
    VideoInfo,
    expected_frames,
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
    "OnFrame",
    "ReconstructionCancelledError",
    "Reconstructor",
    "SeiMessageSource",
    "message_sources",
    "paste_reconstruction",
    "reverse_faces",
]

log = logging.getLogger(__name__)

#: Frames a Ud window holds at most; windows never cross a multiple of it in the frame index.
_MAX_WINDOW_FRAMES = 16
#: ``on_frame(index, boxes, faces)`` of :meth:`Reconstructor.reconstruct_clip`.
OnFrame = Callable[[int, Sequence[Box] | None, FrameFaces], None]


class ReconstructionCancelledError(RuntimeError):
    """The caller asked the clip reconstruction to stop (service shutting down)."""


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
        on_frame: OnFrame | None = None,
    ) -> ClipReport:
        """Reverse every frame of ``source`` into the lossless clip ``destination``, in one pass
        in this process (:func:`authority_service.parallel.reconstruct_clip` splits a long clip
        into segments reversed side by side, with the same result).

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
        info, codec = prepare_clip(source, codec, fallback_to_ffv1)
        report = ClipReport.for_clip(info, codec)
        messages = ClipMessages(self.sources)
        self.reverse_frames(
            read_frames(source),
            destination,
            info,
            codec,
            messages,
            report,
            progress=progress,
            cancelled=cancelled,
            on_frame=on_frame,
        )
        finish_clip(report, info, destination, messages.chosen.name if messages.chosen else None)
        report.seconds = time.perf_counter() - started
        return report

    def reverse_frames(
        self,
        frames: Iterable[VideoFrame],
        destination: Path,
        info: VideoInfo,
        codec: ResultCodec,
        messages: ClipMessages,
        report: ClipReport,
        *,
        first_index: int = 0,
        progress: Callable[[int, int | None], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        on_frame: OnFrame | None = None,
    ) -> None:
        """Reverse ``frames`` (consecutive from index ``first_index``, decoded in a background
        thread) into the lossless file ``destination``, reading their messages with
        ``messages`` and counting them into ``report``: the core of :meth:`reconstruct_clip`
        and of a segment (:func:`authority_service.segments.reverse_segment`), without the
        checks made once the whole clip is read (:func:`finish_clip`).

        Ud runs over windows of frames that never cross a multiple of 16 in the frame index
        (nor exceed ``max_batch`` faces), so a segment starting at such a multiple batches its
        faces exactly as a pass over the whole clip does. ``progress`` gets ``report.frames``.
        On any error ``destination`` is removed.

        Raises:
            CorruptVideoError: decoding fails part-way (the frame reached is named: the
                index of the first frame that did not decode).
            ClipError: a frame's message, as :meth:`reconstruct_clip` lists.
            ReconstructionCancelledError: ``cancelled()`` returned true.
        """
        expected = expected_frames(info)
        writer = LosslessWriter(
            destination,
            info.width,
            info.height,
            info.fps,
            codec=codec,
            container_format=CONTAINER[codec],
            file_mode=PRIVATE_FILE_MODE,  # original faces: only the service user reads them
        )
        encoder: BackgroundConsumer[np.ndarray] = BackgroundConsumer(
            writer.write, depth=_MAX_WINDOW_FRAMES, name="encode"
        )
        decoded = prefetch(frames, depth=8, name="decode")
        reached = first_index  # index after the last frame read
        try:
            window: list[_Pending] = []
            faces = 0
            for frame in decoded:
                reached = frame.index + 1
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
                if (
                    faces >= self.max_batch
                    or len(window) >= _MAX_WINDOW_FRAMES
                    or reached % _MAX_WINDOW_FRAMES == 0
                ):
                    self._flush(window, encoder, report, expected, progress)
                    faces = 0
            self._flush(window, encoder, report, expected, progress)
            encoder.close()
            writer.close()
        except VideoDecodeError as exc:
            self._discard(encoder, writer, destination)
            log.warning("clip decoding failed after %d frames: %s", reached, exc)
            raise CorruptVideoError(  # the cause names the server's file: logged, not returned
                f"the clip cannot be decoded past frame {reached} (truncated or damaged)",
                frame=reached,
            ) from exc
        except BaseException:
            self._discard(encoder, writer, destination)
            raise
        finally:
            decoded.close()

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
