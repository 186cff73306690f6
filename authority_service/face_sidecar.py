"""Every frame's face boxes and how each was reversed, recorded beside a clip's result.

The clip report's per-face list stops at :data:`~authority_service.sealed.MAX_FACE_ENTRIES`;
the console's face overlay needs every frame. :class:`FaceSidecarWriter` is handed to
:meth:`~authority_service.reconstruction.Reconstructor.reconstruct_clip` as its ``on_frame``
callback and writes one line per frame, as the frames are read, into a gzip file of JSON lines
(mode 0600), ``<job id>.faces.jsonl.gz`` in the results directory:

* line 1, the header: ``{"format": "uunet-faces", "version": 1}``;
* one line per frame, in order: ``[index, message, boxes]``, ``message`` 1 when the frame
  carries an ROI message (0: none), ``boxes`` a list of ``[x, y, w, h, method, how]``
  with ``method`` ``"sealed"`` (``how``: the codec the face travelled in) or ``"ud"``
  (``how``: the reason, :data:`~authority_service.sealed.UD_REASONS`);
* the last line, the trailer: ``{"frames": n, "boxes": k, "boxes_omitted": m}``.

Size is bounded: past :data:`MAX_SIDECAR_BOXES` boxes (far above a long clip's: an hour at
25 frames/s with 10 faces a frame is 900,000) a frame's boxes are counted, not listed. A frame
line is about 30 bytes plus 25 a box before gzip, which shrinks the repetitive lines about 10x;
writing one costs a few microseconds a frame, beside milliseconds of decoding and ``Ud``.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from authority_service.sealed import FrameFaces
from shared.geometry import Box
from shared.private_files import open_private

__all__ = [
    "FACES_SUFFIX",
    "MAX_SIDECAR_BOXES",
    "FaceSidecar",
    "FaceSidecarError",
    "FaceSidecarWriter",
    "FrameBoxes",
    "read_face_sidecar",
]

log = logging.getLogger(__name__)

#: Suffix of a job's sidecar in the results directory (after the job id).
FACES_SUFFIX = ".faces.jsonl.gz"
MAX_SIDECAR_BOXES = 2_000_000
_FORMAT = "uunet-faces"
_VERSION = 1


class FaceSidecarError(ValueError):
    """A sidecar file is missing, truncated or not in this format."""


@dataclass(frozen=True)
class FrameBoxes:
    """One frame of the sidecar: whether it carries a message, and its boxes as
    ``(x, y, w, h, method, how)``."""

    index: int
    message: bool
    boxes: tuple[tuple[int, int, int, int, str, str], ...]


@dataclass
class FaceSidecar:
    """A sidecar read back."""

    frames: list[FrameBoxes] = field(default_factory=list)
    boxes: int = 0
    boxes_omitted: int = 0


class FaceSidecarWriter:
    """Writes a sidecar to ``path`` (created 0600, truncated if it exists).

    Use as a context manager: leaving it on an exception removes the file; otherwise
    :meth:`close` writes the trailer. :meth:`add` is the ``on_frame`` callback of
    :meth:`~authority_service.reconstruction.Reconstructor.reconstruct_clip`.

    Raises:
        OSError: the file cannot be created or written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._raw = open_private(path, "wb")
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6)
        self.frames = 0
        self.boxes = 0
        self.boxes_omitted = 0
        self._closed = False
        self._line({"format": _FORMAT, "version": _VERSION})

    def _line(self, value: object) -> None:
        self._gzip.write(json.dumps(value, separators=(",", ":")).encode() + b"\n")

    def add(self, index: int, boxes: Sequence[Box] | None, faces: FrameFaces) -> None:
        """Record frame ``index``: its message's ``boxes`` (``None``: no message) and how
        ``faces`` (what its sealed payload gave) says each was reversed."""
        listed: list[list[object]] = []
        for i, box in enumerate(boxes or ()):
            if self.boxes >= MAX_SIDECAR_BOXES:
                self.boxes_omitted += 1
                continue
            if i in faces.exact:
                listed.append([box.x, box.y, box.w, box.h, "sealed", faces.codecs.get(i, "")])
            else:
                listed.append([box.x, box.y, box.w, box.h, "ud", faces.ud.get(i, "no_payload")])
            self.boxes += 1
        self._line([index, int(boxes is not None), listed])
        self.frames += 1

    def close(self) -> None:
        """Write the trailer and close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._line(
                {"frames": self.frames, "boxes": self.boxes, "boxes_omitted": self.boxes_omitted}
            )
            self._gzip.close()
        finally:
            self._raw.close()

    def discard(self) -> None:
        """Close without a trailer and remove the file."""
        self._closed = True
        try:
            self._gzip.close()
            self._raw.close()
        except OSError as exc:
            log.debug("closing a discarded face sidecar failed: %s", exc)
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> FaceSidecarWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def read_face_sidecar(path: Path) -> FaceSidecar:
    """Read a sidecar back, checking its header, frame order and trailer.

    Raises:
        FaceSidecarError: missing, truncated (no trailer), or not a sidecar of this format.
    """
    result = FaceSidecar()
    trailer: dict[str, int] | None = None
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            header = json.loads(handle.readline() or "null")
            if not isinstance(header, dict) or header.get("format") != _FORMAT:
                raise FaceSidecarError(f"{path.name} is not a face sidecar")
            if header.get("version") != _VERSION:
                raise FaceSidecarError(f"{path.name}: unknown version {header.get('version')}")
            for line in handle:
                value = json.loads(line)
                if isinstance(value, dict):
                    trailer = value
                    break
                index, message, boxes = value
                if index != len(result.frames):
                    raise FaceSidecarError(f"{path.name}: frame {index} out of order")
                entries = tuple(
                    (int(x), int(y), int(w), int(h), str(m), str(how))
                    for x, y, w, h, m, how in boxes
                )
                result.frames.append(FrameBoxes(index, bool(message), entries))
    except FileNotFoundError as exc:
        raise FaceSidecarError(f"{path.name} does not exist") from exc
    except (OSError, EOFError, ValueError, TypeError) as exc:
        if isinstance(exc, FaceSidecarError):
            raise
        raise FaceSidecarError(f"{path.name} is damaged: {exc}") from exc
    if trailer is None or trailer.get("frames") != len(result.frames):
        raise FaceSidecarError(f"{path.name} is truncated (no trailer for its frames)")
    result.boxes = int(trailer.get("boxes", 0))
    result.boxes_omitted = int(trailer.get("boxes_omitted", 0))
    return result
