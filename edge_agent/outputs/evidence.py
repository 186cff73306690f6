"""Lossless evidence recording in segments, with rotation.

``path`` is either a file (``.mkv``, ``.mp4``, ``.mov``, ``.nut``: one recording) or a
directory that receives segments ``<camera>_<UTC start>_<seq>.mkv`` of ``segment_s`` seconds
each. A segment is written as ``<name>.partial`` and renamed when complete, so a finished name
is always a playable file; on SIGTERM the current segment is finished the same way. With
``max_segments`` the oldest finished segments of *this* camera beyond that number are deleted
(names matched exactly: camera ``cam1`` never touches ``cam10_...``).

Evidence is never overwritten. A file ``path`` is used as named while neither it nor its
``.partial`` exists; a later opening (a reopen after an error, a restart) writes
``<stem>_<UTC start>_<seq><suffix>`` next to it instead. A segment name already taken (a restart
within the same second) takes the next free sequence number.

``.partial`` files left by a crash are dealt with on :meth:`EvidenceRecorder.open`: one whose
first frame decodes is renamed to its finished name (``recovered``, logged); any other
(unreadable, or its finished name taken) is renamed ``<name>.partial.quarantined``
(``quarantined``, logged) and kept for inspection. Neither is ever deleted.

FFV1 (``.mkv``) and libx264rgb ``qp 0`` both keep every pixel, so the LSB message survives.
Segments are created mode 0640 in a 0750 directory (never world-readable, whatever the umask):
the owner and its group (the authority's, when it reads them on the same host) only.
Frame timestamps follow the capture index, so frames dropped upstream leave gaps in time.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from edge_agent.outputs.base import FrameSink, SinkError, StreamFormat
from edge_agent.pipeline import SealedFrame
from shared.private_files import GROUP_DIR_MODE, GROUP_FILE_MODE, private_dir
from shared.video_io import LosslessCodec, LosslessWriter, read_frames

__all__ = ["FILE_SUFFIXES", "EvidenceRecorder"]

log = logging.getLogger(__name__)

FILE_SUFFIXES = {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".nut": "nut"}
PARTIAL = ".partial"
QUARANTINED = ".quarantined"
_STAMP_SEQ = r"_[0-9]{8}T[0-9]{6}Z_[0-9]{6}"


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
        self.recovered: list[Path] = []
        self.quarantined: list[Path] = []
        if self.single_file:
            stem, suffix = re.escape(self.path.stem), re.escape(self.path.suffix)
            self._names = re.compile(f"{stem}(?:{_STAMP_SEQ})?{suffix}")
        else:
            self._names = re.compile(f"{re.escape(camera_id)}{_STAMP_SEQ}\\.mkv")

    def open(self, fmt: StreamFormat) -> None:
        self._fmt = fmt
        target_dir = self.path.parent if self.single_file else self.path
        try:
            private_dir(target_dir, GROUP_DIR_MODE)
        except OSError as exc:
            raise SinkError(f"cannot create evidence directory {target_dir}: {exc}") from exc
        self._recover(target_dir)

    def _recover(self, directory: Path) -> None:
        """Finish or quarantine the ``.partial`` files of this recorder's names (a crash's)."""
        for partial in sorted(directory.glob(f"*{PARTIAL}")):
            if not self._names.fullmatch(partial.name[: -len(PARTIAL)]) or not partial.is_file():
                continue
            final = partial.with_name(partial.name[: -len(PARTIAL)])
            try:
                readable = next(iter(read_frames(partial)), None) is not None
            except Exception:  # noqa: BLE001 (any decoding failure: not readable)
                readable = False
            target = final if readable and not final.exists() else None
            if target is None:
                target = partial.with_name(partial.name + QUARANTINED)
            try:
                partial.rename(target)
            except OSError as exc:
                log.error("evidence: cannot move the left-over %s: %s", partial, exc)
                continue
            if target == final:
                self.recovered.append(final)
                log.warning("evidence: recovered %s left by an interrupted run", final)
            else:
                self.quarantined.append(target)
                log.warning(
                    "evidence: %s left by an interrupted run is %s; kept as %s",
                    partial,
                    "not readable" if not readable else "unfinishable (its name is taken)",
                    target,
                )

    def _segment_limit(self) -> int | None:
        if self.single_file or not self.segment_s or self._fmt is None:
            return None
        return max(1, round(self.segment_s * float(self._fmt.fps)))

    def _free_name(self) -> Path:
        """The next name that neither a file nor its ``.partial`` holds (never overwrite)."""
        if self.single_file and not self._taken(self.path):
            return self.path
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        if self.single_file:
            directory, stem, suffix = self.path.parent, self.path.stem, self.path.suffix
        else:
            directory, stem, suffix = self.path, self.camera_id, ".mkv"
        while True:
            final = directory / f"{stem}_{stamp}_{self._sequence:06d}{suffix}"
            self._sequence += 1
            if not self._taken(final):
                return final

    @staticmethod
    def _taken(final: Path) -> bool:
        return final.exists() or final.with_name(final.name + PARTIAL).exists()

    def _start(self, index: int) -> None:
        assert self._fmt is not None
        final = self._free_name()
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
        segments = sorted(
            p
            for p in self.path.glob(f"{self.camera_id}_*.mkv")
            if self._names.fullmatch(p.name) and p.is_file()
        )
        for old in segments[: max(0, len(segments) - self.max_segments)]:
            try:
                old.unlink()
                log.info("evidence: rotated out %s", old)
            except OSError as exc:
                log.warning("evidence: cannot delete %s: %s", old, exc)

    def close(self) -> None:
        self._finish()
