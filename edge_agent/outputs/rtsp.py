"""Publish the public stream to an RTSP server (ANNOUNCE/RECORD, as to mediamtx).

Lossless RGB H.264 (libx264rgb ``qp 0``) keeps every pixel, so the LSB message survives the
network. ``tune=zerolatency`` with x264's sliced threads corrupted frames over RTSP here;
``sliced-threads=0`` fixed it (DESIGN.md). A keyframe every ``gop_s`` seconds lets viewers
join. About 40-60 Mbit/s at 640x480@15: meant for a LAN or the same host.
"""

from __future__ import annotations

import logging

from edge_agent.outputs.base import LosslessStreamSink, SinkError, StreamFormat
from shared.video_io import LosslessWriter

__all__ = ["RtspPublisher"]

log = logging.getLogger(__name__)


class RtspPublisher(LosslessStreamSink):
    """Push sealed frames to ``rtsp://host:port/path``.

    Raises (from :meth:`open` / :meth:`write`):
        SinkError: the server refused or cannot be reached; the frame size is odd.
    """

    name = "rtsp"

    def __init__(self, url: str, *, transport: str = "tcp", gop_s: float = 2.0) -> None:
        super().__init__()
        self.url = url
        self.transport = transport
        self.gop_s = gop_s

    def _start(self, fmt: StreamFormat) -> LosslessWriter:
        gop = max(1, round(self.gop_s * float(fmt.fps)))
        try:
            writer = LosslessWriter(
                self.url,
                fmt.width,
                fmt.height,
                fmt.fps,
                codec="libx264rgb",
                container_format="rtsp",
                codec_options={
                    "tune": "zerolatency",
                    "x264-params": "sliced-threads=0",
                    "g": str(gop),
                },
                container_options={"rtsp_transport": self.transport},
            )
        except Exception as exc:  # av.FFmpegError, OSError, ValueError
            raise SinkError(f"cannot publish to {self.url}: {exc}") from exc
        log.info("rtsp: publishing to %s", self.url)
        return writer
