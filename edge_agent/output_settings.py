"""Where the edge's public frames go: the ``outputs`` section of the edge settings
(:class:`edge_agent.config.EdgeSettings`; the sinks are ``edge_agent.outputs``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from shared.config_base import StrictModel

__all__ = ["EvidenceSettings", "HlsSettings", "LossySettings", "OutputSettings", "RtspSettings"]

PositiveFloat = Annotated[float, Field(gt=0)]


class EvidenceSettings(StrictModel):
    """Lossless recording of the public frames (keeps the LSB message and every pixel)."""

    path: Path
    codec: Literal["ffv1", "libx264rgb"] = "ffv1"
    segment_s: PositiveFloat | None = 60.0
    max_segments: Annotated[int, Field(ge=1)] | None = None
    queue_size: Annotated[int, Field(ge=1)] = 64


class RtspSettings(StrictModel):
    """Publish the public frames to an RTSP server (lossless RGB H.264: the message survives)."""

    url: str
    transport: Literal["tcp", "udp"] = "tcp"
    gop_s: PositiveFloat = 2.0
    queue_size: Annotated[int, Field(ge=1)] = 8
    reconnect_initial_s: PositiveFloat = 1.0
    reconnect_max_s: PositiveFloat = 30.0

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("rtsp://", "rtsps://")):
            raise ValueError("must be an rtsp:// or rtsps:// URL")
        return value


class HlsSettings(StrictModel):
    """HLS (fMP4, RGB lossless H.264 with colour tags): plays pixel-exact in a browser."""

    dir: Path
    segment_s: PositiveFloat = 2.0
    playlist_size: Annotated[int, Field(ge=1)] = 6
    queue_size: Annotated[int, Field(ge=1)] = 16


class LossySettings(StrictModel):
    """Lossy H.264 public stream (plays everywhere); the ROI message travels in per-frame SEI."""

    target: str
    crf: Annotated[int, Field(ge=0, le=51)] = 23
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = (
        "veryfast"
    )
    gop_s: PositiveFloat = 2.0
    transport: Literal["tcp", "udp"] = "tcp"
    queue_size: Annotated[int, Field(ge=1)] = 16
    reconnect_initial_s: PositiveFloat = 1.0
    reconnect_max_s: PositiveFloat = 30.0

    @field_validator("target")
    @classmethod
    def _check_target(cls, value: str) -> str:
        if not value.startswith(("rtsp://", "rtsps://")) and Path(value).suffix.lower() not in (
            ".mp4",
            ".ts",
            ".mkv",
            ".mov",
        ):
            raise ValueError("must be an rtsp:// URL or a .mp4/.ts/.mkv/.mov file")
        return value


class OutputSettings(StrictModel):
    """Where the public frames go (any combination)."""

    evidence: EvidenceSettings | None = None
    rtsp: RtspSettings | None = None
    hls: HlsSettings | None = None
    lossy: LossySettings | None = None
