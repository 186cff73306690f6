"""The per-clip checks of a reversal, the same for one pass and for a clip reversed in segments
(:mod:`authority_service.parallel`): before, what the clip is and which codec its result is
written in (:func:`prepare_clip`); after, that every frame its container declares decoded and
that some frame carried a message (:func:`finish_clip`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from authority_service.clip_report import ClipReport
from authority_service.errors import CorruptVideoError, NoMessageError
from authority_service.media import inspect_clip
from shared.video_io import VideoInfo, expected_frames, missing_frames

__all__ = ["CONTAINER", "RESULT_SUFFIX", "ResultCodec", "finish_clip", "prepare_clip"]

ResultCodec = Literal["ffv1", "libx264rgb"]
#: File suffix and container of a reconstructed clip per codec.
RESULT_SUFFIX: dict[str, str] = {"ffv1": ".mkv", "libx264rgb": ".mp4"}
CONTAINER: dict[str, str] = {"ffv1": "matroska", "libx264rgb": "mp4"}


def prepare_clip(
    source: Path, codec: ResultCodec, fallback_to_ffv1: bool
) -> tuple[VideoInfo, ResultCodec]:
    """What the container says of ``source``, and the codec its result is written in (FFV1
    for an odd-sized clip asked in libx264rgb, with ``fallback_to_ffv1``).

    Raises:
        NotAVideoError / CorruptVideoError / UnsupportedFrameSizeError: as
            :func:`authority_service.media.inspect_clip`.
        ValueError: libx264rgb asked for an odd-sized clip without ``fallback_to_ffv1``.
    """
    info = inspect_clip(source)
    if codec == "libx264rgb" and (info.width % 2 or info.height % 2):
        if not fallback_to_ffv1:
            raise ValueError(
                f"H.264 RGB needs even frame sizes, the clip is {info.width}x{info.height}: "
                "write it as FFV1 (.mkv)"
            )
        codec = "ffv1"
    return info, codec


def finish_clip(
    report: ClipReport, info: VideoInfo, destination: Path, carrier: str | None
) -> None:
    """The checks made once every frame of the clip is reversed into ``destination``; sets the
    report's ``message_source`` (``carrier``). On an error ``destination`` is removed.

    Raises:
        CorruptVideoError: fewer frames decoded than the container declares (truncated).
        NoMessageError: no frame carries a message.
    """
    expected = expected_frames(info)
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
    report.message_source = carrier or ""
