"""Watermarked MP4 previews of a clip job's public clip and result, for a browser's <video>.

A preview is what the investigator's browser plays; the exact result stays downloadable
unchanged (``GET /v1/reconstructions/{id}/result``). Three variants of each clip, all H.264:

* ``yuv444``: 4:4:4 YUV, lossless coding (``libx264`` qp 0) of the frames converted to
  full-range BT.709 (tagged): what Chromium shows right. Measured in Debian's Chromium 150
  (headless, software decoding): every displayed pixel within 3 levels of the exact frame,
  0.7 on average.
* ``rgb``: H.264 RGB, lossless (``libx264rgb`` qp 0, as the result): every pixel outside the
  watermark is the clip's own, for frame-exact tools (FFmpeg, VLC). Chromium 150 decodes and
  plays it, but **shows false colours**: it converts its G, B, R planes as if they were
  Y, Cb, Cr (BT.601), whatever the stream's and the ``colr`` box's matrix say (measured mean
  error 52 levels); do not give it to a browser.
* ``yuv420``: 4:2:0 (``libx264`` CRF 18, BT.601 limited range, tagged), for browsers that do
  not decode H.264 4:4:4 (Firefox, Safari).

The ``rgb`` preview is made from the clip and watermarked; the other two are encoded from it,
so all three carry the same watermark (:mod:`authority_service.watermark`: who, which case,
when the preview was made). Frame ``i`` of every preview of a job has presentation time
``i / fps`` (``fps`` the clip's, as the result's frames have), no B-frames (decode order is
presentation order, no edit list) and the ``moov`` index first (``movflags=+faststart``: a
browser starts playing from the first bytes), so a public and a result preview play in step
frame by frame. An odd frame size (a result written as FFV1) is padded with black on the right
or bottom to the even size H.264 needs; pixel coordinates are unchanged.

Files live in the results directory beside the result, mode 0600 (:func:`preview_path`); a
preview is written under a ``.partial`` name and renamed once complete, so a reader never sees
half of one. The expiry sweep deletes them with the result (every ``<job id>.*`` file).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation, VideoReformatter

from authority_service.job_store import Job
from authority_service.watermark import Watermark, WatermarkText
from shared.private_files import PRIVATE_FILE_MODE, create_private_file
from shared.video_io import LosslessWriter, VideoDecodeError, read_frames

__all__ = [
    "VARIANTS",
    "WHICH",
    "PreviewVariant",
    "PreviewWhich",
    "clip_rate",
    "make_public_preview",
    "preview_path",
    "write_preview",
]

log = logging.getLogger(__name__)

PreviewWhich = Literal["public", "result"]
PreviewVariant = Literal["rgb", "yuv420"]
WHICH: tuple[str, ...] = ("public", "result")
VARIANTS: tuple[str, ...] = ("yuv444", "rgb", "yuv420")
#: The index before the media data; the colour tags in a ``colr`` box too.
_MP4_OPTIONS = {"movflags": "+faststart+write_colr"}


@dataclass(frozen=True)
class _YuvSpec:
    pix_fmt: str
    options: dict[str, str]
    colorspace: Colorspace
    color_range: ColorRange
    #: The H.264 VUI / MP4 ``colr`` codes of primaries, transfer and matrix.
    codes: tuple[int, int, int]


_YUV: dict[str, _YuvSpec] = {
    # Lossless YUV: only the RGB -> YUV rounding (full range, BT.709) is lost.
    "yuv444": _YuvSpec(
        "yuv444p",
        {"qp": "0", "preset": "ultrafast", "bf": "0"},
        Colorspace.ITU709,
        ColorRange.JPEG,
        (1, 1, 1),
    ),
    "yuv420": _YuvSpec(
        "yuv420p",
        {"crf": "18", "preset": "veryfast", "bf": "0"},  # bf 0: decode order is display order
        Colorspace.ITU601,
        ColorRange.MPEG,
        (6, 6, 6),
    ),
}


def preview_path(results_dir: Path, job_id: str, which: str, variant: str) -> Path:
    """Where the ``variant`` preview of a job's ``which`` clip is kept."""
    return results_dir / f"{job_id}.preview-{which}-{variant}.mp4"


def clip_rate(fps: float | Fraction) -> Fraction:
    """The frame rate a clip of ``fps`` is written at (as ``LosslessWriter`` rounds it)."""
    return Fraction(fps).limit_denominator(1001)


class _YuvWriter:
    """H.264 YUV (``spec``) in MP4, frame ``i`` at pts ``i`` (time base ``1 / rate``), the
    conversion from RGB and the colour tags both explicit."""

    def __init__(self, path: Path, width: int, height: int, rate: Fraction, spec: _YuvSpec):
        create_private_file(path, PRIVATE_FILE_MODE)  # FFmpeg keeps an existing file's mode
        self._spec = spec
        self._container = av.open(str(path), mode="w", format="mp4", options=_MP4_OPTIONS)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = spec.pix_fmt
        self._stream.options = dict(spec.options)
        self._stream.time_base = 1 / rate
        context = self._stream.codec_context
        context.color_primaries, context.color_trc, context.colorspace = spec.codes
        context.color_range = int(spec.color_range)
        self._reformatter = VideoReformatter()
        self._pts = 0

    def write(self, rgb: np.ndarray) -> None:
        frame = self._reformatter.reformat(
            av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24"),
            format=self._spec.pix_fmt,
            src_color_range=ColorRange.JPEG,
            dst_colorspace=self._spec.colorspace,
            dst_color_range=self._spec.color_range,
            interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND,
        )
        frame.pts = self._pts
        self._pts += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()


def _even(n: int) -> int:
    return n + (n % 2)


def _padded(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb
    out = np.zeros((height, width, 3), np.uint8)
    out[:h, :w] = rgb
    return out


def _frames(source: Path) -> Iterator[np.ndarray]:
    for frame in read_frames(source):
        yield frame.rgb


def write_preview(
    source: Path,
    destination: Path,
    variant: str,
    fps: float | Fraction,
    watermark: WatermarkText | None,
) -> int:
    """Write the ``variant`` preview of the clip ``source`` to ``destination``; return its
    frame count.

    ``watermark``: the text burned into every frame (``None``: ``source``'s frames carry it
    already, an ``rgb`` preview made into ``yuv444`` or ``yuv420``). ``fps``: the clip's frame
    rate (the job report's), the same for every preview of a job whatever ``source``'s
    container says.

    Raises:
        shared.video_io.VideoDecodeError: ``source`` cannot be read.
        ValueError: unknown variant.
        OSError / av.FFmpegError: the preview cannot be written (``destination`` is then
            left as it was).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown preview variant {variant!r}; use one of {list(VARIANTS)}")
    started = time.perf_counter()
    rate = clip_rate(fps)
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    writer: LosslessWriter | _YuvWriter | None = None
    marker: Watermark | None = None
    count = 0
    try:
        for rgb in _frames(source):
            height, width = rgb.shape[:2]
            if writer is None:
                size = (_even(width), _even(height))
                if watermark is not None:
                    marker = Watermark(watermark, *size)
                writer = (
                    LosslessWriter(
                        partial,
                        *size,
                        rate,
                        codec="libx264rgb",
                        container_format="mp4",
                        container_options=_MP4_OPTIONS,
                        file_mode=PRIVATE_FILE_MODE,
                    )
                    if variant == "rgb"
                    else _YuvWriter(partial, *size, rate, _YUV[variant])
                )
            frame = _padded(rgb, _even(width), _even(height))
            writer.write(marker.apply(frame) if marker is not None else frame)
            count += 1
        if writer is not None:
            writer.close()
        partial.replace(destination)
    except BaseException:
        if writer is not None:
            try:
                writer.close()
            except (OSError, ValueError, av.FFmpegError) as exc:
                log.debug("closing a discarded preview failed: %s", exc)
        partial.unlink(missing_ok=True)
        raise
    log.info(
        "preview %s: %d frames (%s) in %.2f s",
        destination.name,
        count,
        variant,
        time.perf_counter() - started,
    )
    return count


def make_public_preview(
    results_dir: Path, job: Job, upload: Path, fps: float, destination: Path | None = None
) -> Path | None:
    """Make the ``rgb`` preview of a succeeded clip job's uploaded clip (watermarked with its
    requester, case and the time now), before the upload is deleted; return its path, or
    ``None`` when it cannot be made (logged: the job's result is unaffected, the preview
    routes then answer ``preview_unavailable``). Never raises for a bad clip or a full disk.
    ``destination``: where to write it instead of its place in ``results_dir`` (a split job
    makes it beside its segments, :mod:`authority_service.segment_tasks`).
    """
    destination = destination or preview_path(results_dir, job.id, "public", "rgb")
    text = WatermarkText(job.owner, job.case_id, datetime.now(timezone.utc), job.id)
    try:
        write_preview(upload, destination, "rgb", fps, text)
    except (VideoDecodeError, OSError, ValueError, av.FFmpegError) as exc:
        log.error("job %s: its public preview cannot be made: %s", job.id, exc)
        return None
    return destination
