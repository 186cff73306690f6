"""HLS output: fMP4 segments of RGB-lossless H.264 that play pixel-exact in a browser.

libx264rgb ``qp 0`` with the colour tags ``colorspace=rgb, color_primaries=bt709,
color_trc=iec61966-2-1 (sRGB), color_range=pc`` (DESIGN.md: Chromium then shows the exact
pixels). Keyframes every segment, a rolling playlist of ``playlist_size`` segments (older
segment files are deleted), ``index.m3u8`` in ``dir``. The LSB message is kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_agent.outputs.base import LosslessStreamSink, SinkError, StreamFormat
from shared.video_io import LosslessWriter

__all__ = ["HLS_COLOUR_TAGS", "HlsWriter"]

log = logging.getLogger(__name__)

HLS_COLOUR_TAGS = {
    "colorspace": "rgb",
    "color_primaries": "bt709",
    "color_trc": "iec61966-2-1",
    "color_range": "pc",
}


class HlsWriter(LosslessStreamSink):
    """Write an HLS fMP4 playlist into ``directory``.

    Raises (from :meth:`open` / :meth:`write`):
        SinkError: the directory cannot be created or written; the frame size is odd.
    """

    name = "hls"

    def __init__(
        self, directory: str | Path, *, segment_s: float = 2.0, playlist_size: int = 6
    ) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.segment_s = segment_s
        self.playlist_size = playlist_size

    @property
    def playlist(self) -> Path:
        return self.directory / "index.m3u8"

    def _start(self, fmt: StreamFormat) -> LosslessWriter:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create HLS directory {self.directory}: {exc}") from exc
        gop = max(1, round(self.segment_s * float(fmt.fps)))
        try:
            writer = LosslessWriter(
                self.playlist,
                fmt.width,
                fmt.height,
                fmt.fps,
                codec="libx264rgb",
                container_format="hls",
                codec_options={**HLS_COLOUR_TAGS, "g": str(gop), "keyint_min": str(gop)},
                container_options={
                    "hls_time": f"{self.segment_s:g}",
                    "hls_list_size": str(self.playlist_size),
                    "hls_segment_type": "fmp4",
                    "hls_fmp4_init_filename": "init.mp4",
                    "hls_segment_filename": str(self.directory / "segment_%06d.m4s"),
                    "hls_flags": "delete_segments+independent_segments+program_date_time",
                },
            )
        except Exception as exc:  # av.FFmpegError, OSError, ValueError
            raise SinkError(f"cannot start HLS in {self.directory}: {exc}") from exc
        log.info("hls: writing %s", self.playlist)
        return writer
