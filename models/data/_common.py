"""Helpers the loaders share: strict folder listing, natural sort, the subject labels CSV."""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DatasetLayoutError, LabelsFileError
from .images import IMAGE_SUFFIXES, check_image_file
from .labels import ID_LABEL, VOCABULARIES, parse_label_value

__all__ = [
    "LabelTable",
    "check_frames",
    "check_label_columns",
    "label_vocabularies",
    "list_dirs",
    "natural_key",
    "parse_label_cells",
    "read_csv_rows",
    "read_labels_csv",
    "require_dir",
]

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[object, ...]:
    """Sort key that orders ``2.jpg`` before ``10.jpg``."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder.

    Raises:
        DatasetLayoutError: it does not exist or is not a folder.
    """
    if not path.is_dir():
        raise DatasetLayoutError(f"{what} folder not found", path)
    return path


def list_dirs(parent: Path, what: str) -> list[Path]:
    """The sub-folders of ``parent`` (natural order). Hidden entries (``.*``) are ignored.

    Raises:
        DatasetLayoutError: ``parent`` holds a plain file (the layout has only folders there),
            or no folder at all.
    """
    require_dir(parent, what)
    dirs: list[Path] = []
    for entry in parent.iterdir():
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            raise DatasetLayoutError(f"unexpected file in a folder of {what} folders", entry)
        dirs.append(entry)
    if not dirs:
        raise DatasetLayoutError(f"no {what} folder inside", parent)
    return sorted(dirs, key=lambda p: natural_key(p.name))


def list_images(folder: Path, what: str) -> list[Path]:
    """The image files of ``folder`` in natural order. Hidden entries are ignored.

    Raises:
        DatasetLayoutError: a sub-folder or a non-image file is present.
    """
    images: list[Path] = []
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir() or entry.suffix.lower() not in IMAGE_SUFFIXES:
            raise DatasetLayoutError(f"unexpected entry in a {what} folder (only images)", entry)
        images.append(entry)
    return sorted(images, key=lambda p: natural_key(p.name))


def check_frames(paths: Iterable[Path]) -> None:
    """Run :func:`check_image_file` on every path (raises on the first bad one)."""
    for path in paths:
        check_image_file(path)


@dataclass
class LabelTable:
    """Rows of a labels CSV, keyed by subject or by ``(subject, sequence)``."""

    path: Path
    columns: tuple[str, ...]
    per_sequence: bool
    rows: dict[tuple[str, str | None], dict[str, int]] = field(default_factory=dict)
    lines: dict[tuple[str, str | None], int] = field(default_factory=dict)

    def labels_for(self, subject: str, sequence: str) -> dict[str, int]:
        """Known labels of one sequence (empty when the CSV has no row for it)."""
        key = (subject, sequence if self.per_sequence else None)
        return dict(self.rows.get(key, {}))

    def check_keys(self, known: set[tuple[str, str]]) -> None:
        """Every CSV row must name a subject (and sequence) present in the dataset.

        Raises:
            LabelsFileError: a row names an unknown subject or sequence (line and field given).
        """
        subjects = {s for s, _ in known}
        for key, line in self.lines.items():
            subject, sequence = key
            if subject not in subjects:
                raise LabelsFileError(
                    f"subject {subject!r} is not in the dataset",
                    self.path,
                    field="subject",
                    line=line,
                )
            if sequence is not None and (subject, sequence) not in known:
                raise LabelsFileError(
                    f"sequence {sequence!r} of subject {subject!r} is not in the dataset",
                    self.path,
                    field="sequence",
                    line=line,
                )
        missing = len(subjects - {s for s, _ in self.lines})
        if missing:
            log.info("%s: %d subjects have no labels row (labels unknown)", self.path, missing)


def check_label_columns(
    path: Path, columns: Sequence[str], vocab: Mapping[str, tuple[str, ...]]
) -> None:
    """Each label column of a CSV header must have a vocabulary and appear once.

    Raises:
        LabelsFileError: an ``id`` column, an unknown or a duplicate column (line 1).
    """
    seen: set[str] = set()
    for column in columns:
        if column == ID_LABEL:
            raise LabelsFileError(
                "'id' is the subject; it is not a labels column", path, field=column, line=1
            )
        if column not in vocab:
            raise LabelsFileError(
                f"unknown label column (known: {', '.join(sorted(vocab))})",
                path,
                field=column,
                line=1,
            )
        if column in seen:
            raise LabelsFileError("duplicate column", path, field=column, line=1)
        seen.add(column)


def parse_label_cells(
    path: Path,
    columns: Sequence[str],
    cells: Sequence[str],
    vocab: Mapping[str, tuple[str, ...]],
    line: int,
) -> dict[str, int]:
    """The known labels of one CSV row (unknown cells are left out).

    Raises:
        LabelsFileError: a cell that is neither a class name, a class index nor unknown.
    """
    values: dict[str, int] = {}
    for column, cell in zip(columns, cells, strict=True):
        try:
            parsed = parse_label_value(column, cell, vocab)
        except ValueError as exc:
            raise LabelsFileError(str(exc), path, field=column, line=line) from None
        if parsed is not None:
            values[column] = parsed
    return values


def read_csv_rows(
    path: Path, what: str = "labels"
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """A CSV file's header (cells stripped; empty when the file is) and its rows with their
    1-based line numbers, blank rows skipped; every row has as many cells as the header.

    Raises:
        LabelsFileError: the file is missing or unreadable (``what`` names its kind), or (while
            iterating) a row has another cell count than the header.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelsFileError(f"{what} file not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsFileError(f"cannot read {what} file: {exc}", path) from exc
    reader = csv.reader(text.splitlines())
    header = [cell.strip() for cell in next(reader, [])]

    def rows() -> Iterator[tuple[int, list[str]]]:
        for line, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise LabelsFileError(
                    f"{len(row)} cells, the header has {len(header)}", path, line=line
                )
            yield line, row

    return header, rows()


def label_vocabularies(
    extra: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """:data:`models.data.labels.VOCABULARIES` with ``extra`` added (or overriding)."""
    return {**VOCABULARIES, **(extra or {})}


def read_labels_csv(
    path: Path, vocabularies: Mapping[str, tuple[str, ...]] | None = None
) -> LabelTable:
    """Read a labels CSV: ``subject[,sequence],<label>,...``; one row per subject (or sequence).

    Label columns must be label names with a vocabulary (``gender``, ``ethnicity``,
    ``hairstyle``...; see :data:`models.data.labels.VOCABULARIES`, or ``vocabularies`` to add
    your own). Cells hold a class name (any case) or a class index; empty/``unknown``/``-1``
    mean unknown.

    Raises:
        LabelsFileError: missing file, no/bad header, an unknown or duplicate column, an ``id``
            column, a wrong cell count, a bad value, or a duplicate row.
    """
    vocab = label_vocabularies(vocabularies)
    header, rows = read_csv_rows(path)
    if not header or header[0] != "subject":
        raise LabelsFileError("the header must start with 'subject'", path, line=1)
    per_sequence = len(header) > 1 and header[1] == "sequence"
    label_columns = header[2:] if per_sequence else header[1:]
    if not label_columns:
        raise LabelsFileError("no label column after 'subject'", path, line=1)
    check_label_columns(path, label_columns, vocab)
    table = LabelTable(path, tuple(label_columns), per_sequence)
    for line_no, row in rows:
        subject = row[0].strip()
        if not subject:
            raise LabelsFileError("empty subject", path, field="subject", line=line_no)
        sequence = row[1].strip() if per_sequence else None
        if per_sequence and not sequence:
            raise LabelsFileError("empty sequence", path, field="sequence", line=line_no)
        key = (subject, sequence)
        if key in table.rows:
            raise LabelsFileError(
                f"duplicate row (first on line {table.lines[key]})",
                path,
                field="subject",
                line=line_no,
            )
        values = parse_label_cells(
            path, label_columns, row[len(header) - len(label_columns) :], vocab, line_no
        )
        table.rows[key] = values
        table.lines[key] = line_no
    return table
