"""Lossy H.264 public stream (plays everywhere), the ROI message in per-frame SEI.

libx264 ``yuv420p`` at a CRF, ``tune=zerolatency`` (no B-frames), a keyframe every ``gop_s``.
Each frame's message (the same text as the LSB message of the lossless outputs, unless sealed
faces travel in another codec or not at all there: ``SealedFrame.sei_message``,
``sealed_faces.sei``) travels in an SEI user-data-unregistered NAL unit in front of the frame's
slices (:mod:`shared.sei`), so it survives remuxing to MP4, MPEG-TS, HLS and RTSP. The pixels
are not exact: reversal from this stream is approximate (exact or near with sealed faces), and a
v1 tag can only be verified against the lossless evidence frame.

The target is an ``rtsp://`` URL (published like the lossless stream) or a file whose suffix
picks the container (``.mp4``, ``.ts``, ``.mkv``).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from edge_agent.outputs.base import FrameSink, SinkError, StreamFormat
from edge_agent.pipeline import SealedFrame
from shared.sei import build_sei_nal, insert_sei

__all__ = ["LossyPublisher"]

log = logging.getLogger(__name__)

_CONTAINERS = {".mp4": "mp4", ".ts": "mpegts", ".mkv": "matroska", ".mov": "mov"}


class LossyPublisher(FrameSink):
    """Encode sealed frames as lossy H.264 with the message in SEI.

    Raises (from :meth:`open` / :meth:`write`):
        SinkError: unknown file suffix, the server/file cannot be opened, odd frame size.
    """

    name = "lossy"

    def __init__(
        self,
        target: str,
        *,
        crf: int = 23,
        preset: str = "veryfast",
        gop_s: float = 2.0,
        transport: str = "tcp",
    ) -> None:
        self.target = target
        self.crf = crf
        self.preset = preset
        self.gop_s = gop_s
        self.transport = transport
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._messages: dict[int, str] = {}
        self._first_index: int | None = None

    def _format(self) -> tuple[str, dict[str, str]]:
        if self.target.startswith(("rtsp://", "rtsps://")):
            return "rtsp", {"rtsp_transport": self.transport}
        suffix = Path(self.target).suffix.lower()
        if suffix not in _CONTAINERS:
            raise SinkError(
                f"lossy output {self.target}: use rtsp:// or a file ending in "
                f"{', '.join(_CONTAINERS)}"
            )
        Path(self.target).parent.mkdir(parents=True, exist_ok=True)
        return _CONTAINERS[suffix], {}

    def open(self, fmt: StreamFormat) -> None:
        if fmt.width % 2 or fmt.height % 2:
            raise SinkError(f"H.264 yuv420p needs even sizes, got {fmt.width}x{fmt.height}")
        container_format, options = self._format()
        rate = Fraction(fmt.fps).limit_denominator(1001)
        try:
            container = av.open(self.target, mode="w", format=container_format, options=options)
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = fmt.width, fmt.height, "yuv420p"
            gop = max(1, round(self.gop_s * float(rate)))
            stream.options = {
                "crf": str(self.crf),
                "preset": self.preset,
                "tune": "zerolatency",
                "x264-params": "sliced-threads=0",
                "g": str(gop),
            }
            stream.time_base = 1 / rate
        except Exception as exc:  # av.FFmpegError, OSError
            raise SinkError(f"cannot open lossy output {self.target}: {exc}") from exc
        self._container, self._stream = container, stream
        self._messages = {}
        self._first_index = None
        log.info("lossy: writing %s (CRF %d, message in SEI)", self.target, self.crf)

    def _mux(self, packets: list[av.Packet]) -> None:
        assert self._container is not None and self._stream is not None
        for packet in packets:
            message = self._messages.pop(packet.pts, None) if packet.pts is not None else None
            if message is None:
                self._container.mux(packet)
                continue
            data = insert_sei(bytes(packet), build_sei_nal(message))
            rewritten = av.Packet(data)
            rewritten.pts, rewritten.dts = packet.pts, packet.dts
            rewritten.time_base = packet.time_base
            rewritten.is_keyframe = packet.is_keyframe
            rewritten.stream = self._stream
            self._container.mux(rewritten)

    def write(self, frame: SealedFrame) -> None:
        if self._stream is None:
            raise SinkError("lossy output written before open()")
        if self._first_index is None:
            self._first_index = frame.index
        pts = frame.index - self._first_index
        video = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.rgb), format="rgb24")
        video.pts = pts
        self._messages[pts] = frame.lossy_message
        self._mux(list(self._stream.encode(video)))

    def close(self) -> None:
        if self._container is None or self._stream is None:
            return
        try:
            self._mux(list(self._stream.encode(None)))
        finally:
            container = self._container
            self._container, self._stream = None, None
            container.close()
