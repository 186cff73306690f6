"""One PNG frame reversed: what ``POST /v1/frames:reconstruct`` returns at once, and what a
frame job (a frame waiting for an approver, ``jobs.require_approval``) writes once approved.

A frame job's result is the PNG in the results folder, and its report the one-frame case of a
clip's :class:`~authority_service.reconstruction.ClipReport` (``source_codec`` and
``result_codec`` ``"png"``).
"""

from __future__ import annotations

import time
from pathlib import Path

from authority_service.media import decode_png, encode_png
from authority_service.reconstruction import ClipReport, ImageResult, Reconstructor
from shared.private_files import open_private

__all__ = ["FRAME_RESULT_SUFFIX", "reconstruct_frame_file", "reconstruct_png"]

FRAME_RESULT_SUFFIX = ".png"


def reconstruct_png(reconstructor: Reconstructor, data: bytes) -> tuple[ImageResult, bytes]:
    """Reverse the frame in PNG ``data``; return the result and its (lossless) PNG.

    Raises:
        UnsupportedImageError / UnsupportedFrameSizeError: not an acceptable PNG.
        ClipError: what :meth:`~authority_service.reconstruction.Reconstructor.reconstruct_image`
            raises (no, malformed, forged or unverifiable message, unknown model).
    """
    result = reconstructor.reconstruct_image(decode_png(data))
    return result, encode_png(result.rgb)


def frame_report(result: ImageResult, seconds: float) -> ClipReport:
    """The report of one reversed frame."""
    message, faces = result.message, len(result.message.boxes)
    return ClipReport(
        frames=1,
        frames_reconstructed=1 if faces else 0,
        frames_with_message=1,
        faces=faces,
        verified_frames=1 if result.verified else 0,
        unverified_frames=0 if result.verified else 1,
        message_source="lsb",
        model_ids=[result.model_id] if result.model_id else [],
        camera_ids=[message.camera_id] if message.camera_id else [],
        message_versions=[message.version],
        run_ids=[message.run_id] if message.run_id else [],
        width=result.rgb.shape[1],
        height=result.rgb.shape[0],
        source_codec="png",
        result_codec="png",
        seconds=seconds,
        faces_by_method=result.faces_by_method,
    )


def reconstruct_frame_file(reconstructor: Reconstructor, upload: Path, out: Path) -> ClipReport:
    """Reverse the PNG frame at ``upload`` into ``out`` (0600); return its report.

    Raises:
        OSError: ``upload`` cannot be read or ``out`` written.
        ClipError: as :func:`reconstruct_png`.
    """
    started = time.monotonic()
    result, png = reconstruct_png(reconstructor, upload.read_bytes())
    with open_private(out, "wb") as handle:
        handle.write(png)
    return frame_report(result, time.monotonic() - started)
