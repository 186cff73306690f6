"""Typed errors of the data layer: each names the file (and, where it applies, the field).

Every loader and the packer raise one of these, never a bare ``ValueError`` or ``KeyError``, so a
training CLI can report "what is wrong, where" and stop instead of training on half a dataset.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AnnotationError",
    "DatasetError",
    "DatasetLayoutError",
    "EmptySequenceError",
    "ImageReadError",
    "LabelsFileError",
    "PackFormatError",
    "TooManyUnreadableError",
]


class DatasetError(ValueError):
    """Base of every data error. ``path`` is the file or folder at fault (or ``None``)."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class DatasetLayoutError(DatasetError):
    """A dataset folder is not in the layout its loader reads (missing folder, stray file...)."""


class ImageReadError(DatasetError):
    """An image (or video frame) is missing, empty, of an unknown format or cannot be decoded."""


class EmptySequenceError(DatasetError):
    """A sequence (tracklet) has no frame."""


class LabelsFileError(DatasetError):
    """A labels file has an unknown column, a bad value, a duplicate row or an unknown subject.

    ``field`` is the column at fault and ``line`` the 1-based line number, when known.
    """

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        *,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.field = field
        self.line = line
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message, path)


class AnnotationError(LabelsFileError):
    """A per-frame annotation file (P-DESTRE, YouTube Faces boxes) has a malformed line."""


class TooManyUnreadableError(DatasetError):
    """More frames could not be read than the configured threshold allows.

    ``count`` frames failed out of ``total``; ``examples`` lists the first few ``"path: why"``.
    """

    def __init__(self, count: int, total: int, limit: int, examples: list[str]) -> None:
        self.count = count
        self.total = total
        self.limit = limit
        self.examples = examples
        shown = "\n  ".join(examples)
        super().__init__(
            f"{count} of {total} frames could not be read (at most {limit} may be skipped); "
            f"first ones:\n  {shown}"
        )


class PackFormatError(DatasetError):
    """A packed-faces file is not one, is of another version, or its arrays disagree."""
