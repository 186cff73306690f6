"""Video files in and out with PyAV: RGB frames, lossless encodings that keep the LSB message.

Lossless codecs that keep every pixel (and so the LSB ROI message) exactly:

* ``ffv1`` in Matroska (``.mkv``): RGB (``bgr0``), the evidence default;
* ``libx264rgb`` with ``qp=0`` in MP4/MKV/MPEG-TS: H.264 RGB lossless, streamable (RTSP, HLS).

Any other codec (``libx264`` yuv420p at any CRF, VP8, MJPEG...) destroys the LSB plane.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from shared.private_files import create_private_file
from shared.sei import payloads_from_frame

__all__ = [
    "LOSSLESS_CODECS",
    "LosslessWriter",
    "VideoDecodeError",
    "VideoFrame",
    "VideoInfo",
    "expected_frames",
    "missing_frames",
    "probe",
    "read_frames",
    "stream_info",
]

log = logging.getLogger(__name__)

LosslessCodec = Literal["ffv1", "libx264rgb"]
LOSSLESS_CODECS: dict[str, dict[str, object]] = {
    "ffv1": {"pix_fmt": "bgr0", "options": {"level": "3", "g": "1", "slices": "4"}},
    "libx264rgb": {
        "pix_fmt": "rgb24",
        "options": {"qp": "0", "preset": "ultrafast", "x264-params": "sliced-threads=0"},
    },
}


class VideoDecodeError(ValueError):
    """A file is not a readable video (missing, not a video, truncated or corrupt)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says of a file's first video stream.

    ``duration`` (seconds) is the stream's, else the container's; ``None`` when neither says.
    """

    width: int
    height: int
    fps: Fraction
    frames: int | None
    codec: str
    duration: float | None = None


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: its index in the file, RGB pixels, presentation time (s), and the
    uunet ROI message payloads its H.264 SEI units carried (:func:`shared.sei.payloads_from_frame`;
    a lossy public stream's messages, empty otherwise)."""

    index: int
    rgb: np.ndarray
    time: float | None
    sei: tuple[bytes, ...] = ()


def _open(path: str | Path) -> av.container.InputContainer:
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"video not found: {path}")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError) as exc:
        raise VideoDecodeError(f"{path}: not a readable video: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path}: no video stream")
    return container


def stream_info(container: av.container.InputContainer) -> VideoInfo:
    """What an open container says of its first video stream (it must have one)."""
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    if stream.duration is not None and stream.time_base is not None:
        duration: float | None = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    else:
        duration = None
    return VideoInfo(
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        fps=Fraction(rate),
        frames=stream.frames or None,
        codec=stream.codec_context.name,
        duration=duration,
    )


def probe(path: str | Path) -> VideoInfo:
    """Return size, frame rate, frame count (when known) and codec of the first video stream.

    Raises:
        VideoDecodeError: missing file, not a video, or no video stream.
    """
    with _open(path) as container:
        return stream_info(container)


def expected_frames(info: VideoInfo) -> int | None:
    """How many frames the container declares (frame count, else duration x rate)."""
    if info.frames:
        return info.frames
    if info.duration and info.fps:
        return round(info.duration * float(info.fps))
    return None


def missing_frames(info: VideoInfo, decoded: int) -> int:
    """How many of the frames the container declares were not decoded (0: none, or it declares
    nothing). One frame of slack: a duration rounded up declares a frame too many."""
    expected = expected_frames(info)
    if expected is None or decoded >= expected - 1:
        return 0
    return expected - decoded


def read_frames(path: str | Path) -> Iterator[VideoFrame]:
    """Decode every frame of the first video stream as ``H x W x 3`` RGB ``uint8``.

    Raises:
        VideoDecodeError: missing file, not a video, or a decoding error part-way (the frames
            before it have been yielded; the error names the index reached).
    """
    container = _open(path)
    index = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            sei = tuple(payloads_from_frame(frame))
            yield VideoFrame(index, frame.to_ndarray(format="rgb24"), frame.time, sei)
            index += 1
    except av.FFmpegError as exc:
        raise VideoDecodeError(f"{path}: decoding failed at frame {index}: {exc}") from exc
    finally:
        container.close()
    if index == 0:
        raise VideoDecodeError(f"{path}: no decodable frame")


class LosslessWriter:
    """Encode RGB frames losslessly into a file (FFV1/MKV or libx264rgb qp 0).

    Use as a context manager; :meth:`close` flushes the encoder and finishes the file.
    ``file_mode``: create the file with this mode (``0o600``: only its owner reads it) instead
    of the umask's; an existing file keeps its mode.

    Raises:
        ValueError: unknown codec, bad size or frame rate.
        OSError / av.FFmpegError: the file cannot be created.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: Fraction | float,
        codec: LosslessCodec = "ffv1",
        container_format: str | None = None,
        *,
        codec_options: dict[str, str] | None = None,
        container_options: dict[str, str] | None = None,
        file_mode: int | None = None,
    ) -> None:
        if codec not in LOSSLESS_CODECS:
            raise ValueError(
                f"codec {codec!r} is not lossless here; use one of {list(LOSSLESS_CODECS)}"
            )
        if width < 1 or height < 1:
            raise ValueError(f"bad frame size {width}x{height}")
        rate = Fraction(fps).limit_denominator(1001)
        if rate <= 0:
            raise ValueError(f"bad frame rate {fps}")
        if codec == "libx264rgb" and (width % 2 or height % 2):
            raise ValueError(f"libx264rgb needs even sizes, got {width}x{height}")
        # A URL (rtsp://...) is passed to FFmpeg as it is; anything else is a file path.
        self.path = Path(path) if "://" not in str(path) else str(path)
        self.width, self.height = width, height
        spec = LOSSLESS_CODECS[codec]
        options = dict(spec["options"])  # type: ignore[arg-type]
        if codec_options:
            if "qp" in codec_options and codec == "libx264rgb" and codec_options["qp"] != "0":
                raise ValueError("libx264rgb is lossless only with qp 0")
            options.update(codec_options)
        if file_mode is not None and isinstance(self.path, Path):
            create_private_file(self.path, file_mode)  # FFmpeg keeps an existing file's mode
        self._container = av.open(
            str(self.path), mode="w", format=container_format, options=container_options or {}
        )
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = str(spec["pix_fmt"])
        self._stream.options = options
        self._stream.time_base = Fraction(1, 1) / rate
        self.frames_written = 0
        self._last_pts: int | None = None
        self._closed = False

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Encode one ``H x W x 3`` uint8 RGB frame.

        ``pts`` is the frame's time in frame periods (default: the count of frames written so
        far); it must increase from frame to frame, so gaps (dropped frames) keep their time.

        Raises:
            ValueError: wrong size or type; a ``pts`` not above the previous one; writing
                after close.
        """
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        if rgb.dtype != np.uint8 or rgb.shape != (self.height, self.width, 3):
            raise ValueError(
                f"{self.path}: expected a {self.width}x{self.height} RGB uint8 frame, got "
                f"{rgb.shape} {rgb.dtype}"
            )
        if pts is None:
            pts = self.frames_written if self._last_pts is None else self._last_pts + 1
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"{self.path}: pts {pts} does not follow {self._last_pts}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = pts
        self._last_pts = pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
        log.debug("closed %s after %d frames", self.path, self.frames_written)

    def __enter__(self) -> LosslessWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
