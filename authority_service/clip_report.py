"""What a clip reconstruction did: counts, ids and face methods (stored with the job, returned by
the API), built frame by frame (:meth:`ClipReport.count`) and, for a clip reversed in segments
(:mod:`authority_service.parallel`), joined segment by segment (:meth:`ClipReport.merge`) into
the report a single pass over the whole clip gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from authority_service.decoders import Decoder
from authority_service.messages import FrameMessage
from authority_service.sealed import FaceMethods
from shared.video_io import VideoInfo

__all__ = ["ClipReport"]


def _extend_unique(values: list[str], more: list[str]) -> None:
    """Append the values of ``more`` not yet in ``values``, in order (first seen first)."""
    for value in more:
        if value not in values:
            values.append(value)


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

    @classmethod
    def for_clip(cls, info: VideoInfo, result_codec: str) -> ClipReport:
        """An empty report of the clip ``info`` describes, its result written in
        ``result_codec``."""
        return cls(
            width=info.width,
            height=info.height,
            fps=float(info.fps),
            source_codec=info.codec,
            result_codec=result_codec,
        )

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

    def merge(self, later: ClipReport) -> None:
        """Add the counts of ``later``, the report of the frames that follow this report's:
        counters summed, ids appended in the order first seen, face methods merged
        (:meth:`~authority_service.sealed.FaceMethods.merge`, the per-face list capped as one
        pass caps it). The clip's own fields (size, codecs, source, seconds) stay this one's."""
        self.frames += later.frames
        self.frames_reconstructed += later.frames_reconstructed
        self.frames_with_message += later.frames_with_message
        self.frames_without_message += later.frames_without_message
        self.faces += later.faces
        self.verified_frames += later.verified_frames
        self.unverified_frames += later.unverified_frames
        _extend_unique(self.model_ids, later.model_ids)
        _extend_unique(self.camera_ids, later.camera_ids)
        _extend_unique(self.message_versions, later.message_versions)
        _extend_unique(self.run_ids, later.run_ids)
        self.faces_by_method.merge(later.faces_by_method)
