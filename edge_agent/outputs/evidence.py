"""Lossless evidence recording in segments, with rotation.

``path`` is either a file (``.mkv``, ``.mp4``, ``.mov``, ``.nut``: one recording) or a
directory that receives segments ``<camera>_<UTC start>_<seq>.mkv`` of ``segment_s`` seconds
each. A segment is written as ``<name>.partial`` and renamed when complete, so a finished name
is always a playable file; on SIGTERM the current segment is finished the same way. With
``max_segments`` the oldest finished segments beyond that number are deleted.

FFV1 (``.mkv``) and libx264rgb ``qp 0`` both keep every pixel, so the LSB message survives.
Segments are created mode 0640 in a 0750 directory (never world-readable, whatever the umask):
the owner and its group (the authority's, when it reads them on the same host) only.
Frame timestamps follow the capture index, so frames dropped upstream leave gaps in time.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from edge_agent.outputs.base import FrameSink, SinkError, StreamFormat
from edge_agent.pipeline import SealedFrame
from shared.private_files import GROUP_DIR_MODE, GROUP_FILE_MODE, private_dir
from shared.video_io import LosslessCodec, LosslessWriter

__all__ = ["FILE_SUFFIXES", "EvidenceRecorder"]

log = logging.getLogger(__name__)

FILE_SUFFIXES = {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".nut": "nut"}
PARTIAL = ".partial"


class EvidenceRecorder(FrameSink):
    """Write sealed frames losslessly to one file or to rotating segments.

    Raises (from :meth:`open` / :meth:`write`):
        SinkError: the directory cannot be created, or a file cannot be written.
    """

    name = "evidence"

    def __init__(
        self,
        path: str | Path,
        *,
        camera_id: str = "camera",
        codec: LosslessCodec = "ffv1",
        segment_s: float | None = 60.0,
        max_segments: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.single_file = self.path.suffix.lower() in FILE_SUFFIXES
        self.camera_id = camera_id
        self.codec: LosslessCodec = codec
        self.segment_s = segment_s
        self.max_segments = max_segments
        self._fmt: StreamFormat | None = None
        self._writer: LosslessWriter | None = None
        self._final: Path | None = None
        self._first_index = 0
        self._segment_frames = 0
        self._sequence = 0
        self.finished: list[Path] = []

    def open(self, fmt: StreamFormat) -> None:
        self._fmt = fmt
        target_dir = self.path.parent if self.single_file else self.path
        try:
            private_dir(target_dir, GROUP_DIR_MODE)
        except OSError as exc:
            raise SinkError(f"cannot create evidence directory {target_dir}: {exc}") from exc

    def _segment_limit(self) -> int | None:
        if self.single_file or not self.segment_s or self._fmt is None:
            return None
        return max(1, round(self.segment_s * float(self._fmt.fps)))

    def _start(self, index: int) -> None:
        assert self._fmt is not None
        if self.single_file:
            final = self.path
        else:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            final = self.path / f"{self.camera_id}_{stamp}_{self._sequence:06d}.mkv"
            self._sequence += 1
        partial = final.with_name(final.name + PARTIAL)
        container = FILE_SUFFIXES.get(final.suffix.lower(), "matroska")
        try:
            self._writer = LosslessWriter(
                partial,
                self._fmt.width,
                self._fmt.height,
                self._fmt.fps,
                codec=self.codec,
                container_format=container,
                file_mode=GROUP_FILE_MODE,
            )
        except (OSError, ValueError) as exc:
            raise SinkError(f"cannot start evidence file {final}: {exc}") from exc
        except Exception as exc:  # av.FFmpegError
            raise SinkError(f"cannot start evidence file {final}: {exc}") from exc
        self._final = final
        self._first_index = index
        self._segment_frames = 0
        log.info("evidence: recording %s", final)

    def write(self, frame: SealedFrame) -> None:
        if self._fmt is None:
            raise SinkError("evidence recorder written before open()")
        limit = self._segment_limit()
        if (
            self._writer is not None
            and limit is not None
            and frame.index - self._first_index >= limit
        ):
            self._finish()
        if self._writer is None:
            self._start(frame.index)
        assert self._writer is not None
        self._writer.write(frame.rgb, pts=frame.index - self._first_index)
        self._segment_frames += 1

    def _finish(self) -> None:
        writer, final = self._writer, self._final
        self._writer, self._final = None, None
        if writer is None or final is None:
            return
        partial = writer.path
        try:
            writer.close()
        finally:
            if writer.frames_written and isinstance(partial, Path) and partial.exists():
                partial.replace(final)
                self.finished.append(final)
                log.info("evidence: finished %s (%d frames)", final, writer.frames_written)
            elif isinstance(partial, Path):
                partial.unlink(missing_ok=True)
        self._rotate()

    def _rotate(self) -> None:
        if self.single_file or self.max_segments is None:
            return
        segments = sorted(p for p in self.path.glob(f"{self.camera_id}_*.mkv") if p.is_file())
        for old in segments[: max(0, len(segments) - self.max_segments)]:
            try:
                old.unlink()
                log.info("evidence: rotated out %s", old)
            except OSError as exc:
                log.warning("evidence: cannot delete %s: %s", old, exc)

    def close(self) -> None:
        self._finish()
