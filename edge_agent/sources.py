"""Video sources of the edge: files, RTSP URLs and V4L2 devices, opened and decoded through PyAV.

:func:`parse_source` says what a URL is; :func:`open_frames` yields its frames (RGB, in decode
order); :func:`probe_source` reads its size and rate; :func:`source_answers` checks, without
decoding, whether a live source is reachable again (a TCP connection to an RTSP camera, the
device node of a V4L2 one). A file that ends early (fewer frames decoded than its container
declares, or a decoding error) raises :class:`SourceIncompleteError`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import av
import numpy as np

from shared.video_io import missing_frames, stream_info

__all__ = [
    "CapturedFrame",
    "SourceError",
    "SourceIncompleteError",
    "SourceInfo",
    "SourceSpec",
    "open_frames",
    "parse_source",
    "probe_source",
    "source_answers",
]

log = logging.getLogger(__name__)

SourceKind = Literal["file", "rtsp", "v4l2"]
_LIVE_SCHEMES = ("rtsp://", "rtsps://")


class SourceError(ValueError):
    """A source cannot be used: missing file, unknown scheme, not a video, no video stream."""


class SourceIncompleteError(SourceError):
    """A file source ended early: ``reason`` ``truncated`` (fewer frames decoded than its
    container declares) or ``decode_error`` (decoding failed part-way)."""

    def __init__(self, message: str, reason: Literal["truncated", "decode_error"]) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source: its kind and what to hand to FFmpeg."""

    kind: SourceKind
    location: str

    @property
    def live(self) -> bool:
        return self.kind != "file"


@dataclass(frozen=True)
class SourceInfo:
    """Size and frame rate of an opened source."""

    width: int
    height: int
    fps: Fraction


@dataclass(frozen=True)
class CapturedFrame:
    """One captured frame: index in capture order, RGB pixels, capture time (monotonic s)."""

    index: int
    rgb: np.ndarray
    captured_at: float


def parse_source(url: str) -> SourceSpec:
    """Classify a source: ``rtsp://...``, ``/dev/videoN`` or ``v4l2:///dev/videoN``, or a file.

    Raises:
        SourceError: an empty string, an unsupported URL scheme, or a file that does not exist.
    """
    if not url:
        raise SourceError("no source given (--source or source.url)")
    if url.startswith(_LIVE_SCHEMES):
        return SourceSpec("rtsp", url)
    if url.startswith("v4l2://"):
        return SourceSpec("v4l2", url[len("v4l2://") :])
    if url.startswith("/dev/video"):
        return SourceSpec("v4l2", url)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise SourceError(
            f"unsupported source scheme {scheme!r}: use a file, rtsp:// or /dev/video"
        )
    path = Path(url)
    if not path.is_file():
        raise SourceError(f"source file not found: {path}")
    return SourceSpec("file", str(path))


def _open_container(
    spec: SourceSpec, rtsp_transport: str, open_timeout: float, read_timeout: float
) -> av.container.InputContainer:
    options: dict[str, str] = {}
    fmt = None
    if spec.kind == "rtsp":
        options = {"rtsp_transport": rtsp_transport}
    elif spec.kind == "v4l2":
        fmt = "v4l2"
    try:
        container = av.open(
            spec.location,
            mode="r",
            format=fmt,
            options=options,
            timeout=(open_timeout, read_timeout),
        )
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open source {spec.location}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"source {spec.location} has no video stream")
    return container


def _info(container: av.container.InputContainer, fps_override: float | None) -> SourceInfo:
    stream = container.streams.video[0]
    if fps_override:
        rate = Fraction(fps_override).limit_denominator(1001)
    else:
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
    return SourceInfo(stream.codec_context.width, stream.codec_context.height, rate)


def probe_source(
    spec: SourceSpec, *, fps: float | None = None, rtsp_transport: str = "tcp", timeout: float = 10
) -> SourceInfo:
    """Open a source once to read its size and frame rate.

    Raises:
        SourceError: it cannot be opened or has no video stream.
    """
    with _open_container(spec, rtsp_transport, timeout, timeout) as container:
        return _info(container, fps)


def open_frames(
    spec: SourceSpec,
    *,
    rtsp_transport: str = "tcp",
    open_timeout: float = 10.0,
    read_timeout: float = 10.0,
    realtime: bool = False,
    stop: threading.Event | None = None,
    fps: float | None = None,
    on_open: Callable[[SourceInfo], None] | None = None,
    decode_threads: int = 1,
) -> Iterator[np.ndarray]:
    """Decode RGB frames from a source until it ends (``realtime``: paced at its frame rate).

    ``on_open`` receives the source's size and frame rate once it is open (``fps``
    overrides the frame rate the source reports). ``decode_threads``: the decoder's threads
    (0: FFmpeg's automatic count, one per core plus one; each frame thread holds its own
    frames, about 7 MiB more per thread at 1080p).

    Raises:
        ValueError: ``decode_threads`` is negative.
        SourceError: it cannot be opened, or decoding fails part-way (a live source).
        SourceIncompleteError: a file ends early (truncated, or decoding fails part-way).
    """
    if decode_threads < 0:
        raise ValueError(f"decode_threads must be >= 0, got {decode_threads}")
    container = _open_container(spec, rtsp_transport, open_timeout, read_timeout)
    if on_open is not None:
        on_open(_info(container, fps))
    declared = stream_info(container) if spec.kind == "file" else None
    decoded = 0
    start_wall: float | None = None
    first_time: float | None = None
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = decode_threads
        for frame in container.decode(stream):
            if stop is not None and stop.is_set():
                return
            if realtime and frame.time is not None:
                now = time.monotonic()
                if start_wall is None or first_time is None:
                    start_wall, first_time = now, frame.time
                delay = start_wall + (frame.time - first_time) - now
                if delay > 0:
                    if stop is None:
                        time.sleep(delay)
                    elif stop.wait(delay):
                        return
            decoded += 1
            yield frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError) as exc:
        message = f"source {spec.location} failed while decoding"
        if declared is not None:
            raise SourceIncompleteError(
                f"{message} after {decoded} frames: {exc}", "decode_error"
            ) from exc
        raise SourceError(f"{message}: {exc}") from exc
    finally:
        container.close()
    missing = missing_frames(declared, decoded) if declared is not None else 0
    if missing:
        raise SourceIncompleteError(
            f"source {spec.location} ended after {decoded} of the {decoded + missing} frames "
            "its container declares (truncated)",
            "truncated",
        )


_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}


def source_answers(spec: SourceSpec, timeout: float = 1.0) -> Callable[[], bool] | None:
    """A cheap check that a live source is reachable again (``None`` for a file): a TCP
    connection to an RTSP camera's host and port, the device node of a V4L2 camera."""
    if spec.kind == "v4l2":
        return lambda: os.path.exists(spec.location)
    if spec.kind != "rtsp":
        return None
    parts = urlsplit(spec.location)
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except (ValueError, KeyError):
        return None
    host = parts.hostname
    if not host:
        return None

    def answers() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False

    return answers
