"""CelebA (aligned): identities and the 40 binary attributes -> gender, hairstyle and more.

Two layouts are read:

* an **index CSV** (``load_celeba(root, index_csv)``): columns exactly ``path,file,identity`` and
  the 40 CelebA attributes (``1``/``-1``); ``path`` is relative to ``root`` (the subset at hand:
  ``by_identity/<id>/<file>.jpg`` and ``singletons/<file>.jpg``);
* the **official files** (``index_csv=None``): ``root/img_align_celeba/<nnnnnn>.jpg``,
  ``root/identity_CelebA.txt`` (``<file> <identity>``) and ``root/list_attr_celeba.txt`` (a
  count line, the 40 names, then ``<file> <40 values>``); other paths can be passed.

Each image is a one-frame sequence (its file stem) of its identity. Every image file under
``root`` must be listed and every listed image must exist.

Labels (from the attributes):

* ``gender``: ``Male`` 1 -> male, -1 -> female;
* ``hairstyle`` (first rule that applies): ``Wearing_Hat`` -> unknown (hair hidden); ``Bald``
  -> bald; ``Bangs`` -> bangs; ``Wavy_Hair`` without ``Straight_Hair`` -> wavy;
  ``Straight_Hair`` without ``Wavy_Hair`` -> straight; otherwise unknown (neither or both set);
* ``hair_colour``: exactly one of Black/Brown/Blond/Gray_Hair (and no hat), else unknown;
* ``beard`` (``No_Beard`` -1 -> yes), ``moustache`` (``Mustache``), ``glasses``
  (``Eyeglasses`` 1 -> normal, -1 -> no).

Crop: the aligned images put the eyes at fixed places; :data:`CELEBA_ALIGNED_CROP` is the square
(72x72 at x 8, y 26 of the 89x109 half-resolution images; scaled for other sizes) that frames
the face like LFW (measured with YuNet on 300 random images here: median eye distance 19.4 px,
eye centre (44.1, 55.9); crop side = eye distance / 0.27, eyes 42% down, as in LFW).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ._common import natural_key, read_csv_rows, require_dir
from .crops import CropRule, RelativeBox
from .errors import DatasetLayoutError, LabelsFileError
from .images import IMAGE_SUFFIXES, check_image_file
from .labels import class_index
from .tracklet import Tracklet

__all__ = ["CELEBA_ALIGNED_CROP", "CELEBA_ATTRIBUTES", "celeba_labels", "load_celeba"]

log = logging.getLogger(__name__)

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip
_INDEX_COLUMNS = ("path", "file", "identity")
CELEBA_ALIGNED_CROP = RelativeBox(x=8 / 89, y=26 / 109, w=72 / 89, h=72 / 109)
_HAIR_COLOURS = {
    "Black_Hair": "black",
    "Brown_Hair": "brown",
    "Blond_Hair": "blond",
    "Gray_Hair": "grey",
}


def celeba_labels(attrs: Mapping[str, bool]) -> dict[str, int]:
    """Our labels from one image's CelebA attributes (see the module docstring for the rules)."""
    labels = {"gender": class_index("gender", "male" if attrs["Male"] else "female")}
    hat = attrs["Wearing_Hat"]
    style = None
    if hat:
        style = None
    elif attrs["Bald"]:
        style = "bald"
    elif attrs["Bangs"]:
        style = "bangs"
    elif attrs["Wavy_Hair"] != attrs["Straight_Hair"]:
        style = "wavy" if attrs["Wavy_Hair"] else "straight"
    if style is not None:
        labels["hairstyle"] = class_index("hairstyle", style)
    colours = [c for a, c in _HAIR_COLOURS.items() if attrs[a]]
    if not hat and len(colours) == 1:
        labels["hair_colour"] = class_index("hair_colour", colours[0])
    labels["beard"] = class_index("beard", "no" if attrs["No_Beard"] else "yes")
    labels["moustache"] = class_index("moustache", "yes" if attrs["Mustache"] else "no")
    labels["glasses"] = class_index("glasses", "normal" if attrs["Eyeglasses"] else "no")
    return labels


def load_celeba(
    root: str | Path,
    index_csv: str | Path | None = None,
    *,
    identity_file: str | Path | None = None,
    attr_file: str | Path | None = None,
    crop: CropRule = CELEBA_ALIGNED_CROP,
    check_images: bool = True,
) -> list[Tracklet]:
    """Load CelebA from an index CSV or from the official identity/attribute files.

    Raises:
        DatasetLayoutError: missing folder, a listed image that does not exist, or an image
            under ``root`` that is not listed.
        LabelsFileError: unknown or missing columns, a bad attribute value (not 1/-1), a bad
            identity, a file name that disagrees with its path, a duplicate row, or (official
            files) an image without attributes.
        ImageReadError: an empty or non-image file (``check_images``).
    """
    root = require_dir(Path(root), "CelebA root")
    if index_csv is not None:
        rows = _read_index_csv(Path(index_csv))
        source_file = Path(index_csv)
    else:
        images_dir = require_dir(root / "img_align_celeba", "CelebA img_align_celeba")
        id_path = Path(identity_file) if identity_file else root / "identity_CelebA.txt"
        attr_path = Path(attr_file) if attr_file else root / "list_attr_celeba.txt"
        rows = _read_official(id_path, attr_path, images_dir.relative_to(root))
        source_file = id_path
    listed = {rel for rel, _, _, _ in rows}
    present = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    }
    for rel, _, _, line in rows:
        if rel not in present:
            raise DatasetLayoutError(
                f"listed image not found (line {line} of {source_file})", root / rel
            )
    unlisted = sorted(present - listed, key=natural_key)
    if unlisted:
        raise DatasetLayoutError(
            f"{len(unlisted)} images are not listed in {source_file}", root / unlisted[0]
        )
    tracklets = []
    for rel, identity, attrs, _ in rows:
        path = root / rel
        if check_images:
            check_image_file(path)
        tracklets.append(
            Tracklet(
                subject=identity,
                sequence=Path(rel).stem,
                frames=(path,),
                labels=celeba_labels(attrs),
                crop=crop,
                source="celeba",
            )
        )
    log.info(
        "%s: %d identities, %d images", root, len({t.subject for t in tracklets}), len(tracklets)
    )
    return tracklets


def _attr_value(cell: str, path: Path, line: int, name: str) -> bool:
    cell = cell.strip()
    if cell == "1":
        return True
    if cell == "-1":
        return False
    raise LabelsFileError(f"attribute value {cell!r} is not 1 or -1", path, field=name, line=line)


def _identity(cell: str, path: Path, line: int) -> str:
    cell = cell.strip()
    if not cell.isdigit() or int(cell) < 1:
        raise LabelsFileError(
            f"identity {cell!r} is not a positive integer", path, field="identity", line=line
        )
    return str(int(cell))


def _read_index_csv(path: Path) -> list[tuple[str, str, dict[str, bool], int]]:
    header, rows = read_csv_rows(path, "index CSV")
    if not header:
        raise LabelsFileError("empty file", path)
    known = set(_INDEX_COLUMNS) | set(CELEBA_ATTRIBUTES)
    for name in header:
        if name not in known:
            raise LabelsFileError("unknown column", path, field=name, line=1)
    for name in (*_INDEX_COLUMNS, *CELEBA_ATTRIBUTES):
        if name not in header:
            raise LabelsFileError("missing column", path, field=name, line=1)
    if len(set(header)) != len(header):
        raise LabelsFileError("duplicate column", path, line=1)
    col = {name: i for i, name in enumerate(header)}
    out = []
    seen: set[str] = set()
    for line_no, row in rows:
        rel = row[col["path"]].strip()
        if Path(rel).name != row[col["file"]].strip():
            raise LabelsFileError(
                f"file {row[col['file']]!r} is not the name of {rel!r}",
                path,
                field="file",
                line=line_no,
            )
        if rel in seen:
            raise LabelsFileError(f"duplicate row for {rel}", path, field="path", line=line_no)
        seen.add(rel)
        attrs = {a: _attr_value(row[col[a]], path, line_no, a) for a in CELEBA_ATTRIBUTES}
        out.append((rel, _identity(row[col["identity"]], path, line_no), attrs, line_no))
    return out


def _read_official(
    id_path: Path, attr_path: Path, images_rel: Path
) -> list[tuple[str, str, dict[str, bool], int]]:
    try:
        id_lines = id_path.read_text(encoding="utf-8").splitlines()
        attr_lines = attr_path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise LabelsFileError("CelebA label file not found", exc.filename) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsFileError(f"cannot read CelebA label files: {exc}", id_path) from exc
    if len(attr_lines) < 2:
        raise LabelsFileError("attribute file has no header", attr_path)
    names = attr_lines[1].split()
    for name in names:
        if name not in CELEBA_ATTRIBUTES:
            raise LabelsFileError("unknown attribute", attr_path, field=name, line=2)
    if tuple(names) != CELEBA_ATTRIBUTES:
        missing = [a for a in CELEBA_ATTRIBUTES if a not in names]
        raise LabelsFileError(
            "attributes missing or out of order", attr_path, field=(missing or [None])[0], line=2
        )
    attrs_by_file: dict[str, dict[str, bool]] = {}
    for line_no, line in enumerate(attr_lines[2:], start=3):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != 41:
            raise LabelsFileError(f"{len(cells)} cells, expected 41", attr_path, line=line_no)
        if cells[0] in attrs_by_file:
            raise LabelsFileError(f"duplicate row for {cells[0]}", attr_path, line=line_no)
        attrs_by_file[cells[0]] = {
            a: _attr_value(v, attr_path, line_no, a)
            for a, v in zip(CELEBA_ATTRIBUTES, cells[1:], strict=True)
        }
    out = []
    seen: set[str] = set()
    for line_no, line in enumerate(id_lines, start=1):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != 2:
            raise LabelsFileError(
                f"{len(cells)} cells, expected '<file> <identity>'", id_path, line=line_no
            )
        name, identity = cells
        if name in seen:
            raise LabelsFileError(f"duplicate row for {name}", id_path, line=line_no)
        seen.add(name)
        if name not in attrs_by_file:
            raise LabelsFileError(f"no attributes for {name}", attr_path, field="file")
        out.append(
            (
                (images_rel / name).as_posix(),
                _identity(identity, id_path, line_no),
                attrs_by_file[name],
                line_no,
            )
        )
    return out
