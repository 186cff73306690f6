"""Label names and their class vocabularies, shared by every loader.

A label is a name (``"gender"``) and a class index into that label's vocabulary
(``GENDER = ("male", "female")``: 0 male, 1 female). Every loader maps its dataset's codes into
these vocabularies, so a pack that mixes datasets compares like with like. An unknown value is
simply absent from a tracklet's ``labels`` (and ``-1`` in packed arrays).

``"id"`` is special: it is never stored in a tracklet; it always is the subject, and the packer
writes the subject index in its column.

Hairstyle vocabularies differ between datasets (CelebA describes texture and fringe, P-DESTRE
length): the union vocabulary below keeps every dataset's classes apart, so two samples share a
hairstyle class only when one dataset said so. Compare hairstyles within one source (packed
arrays carry ``source`` for that); across sources "different class" does not mean "different
hair".
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "DEFAULT_LABEL_NAMES",
    "ID_LABEL",
    "VOCABULARIES",
    "class_index",
    "parse_label_value",
    "validate_label_names",
]

ID_LABEL = "id"
# The paper's t = 4 labels.
DEFAULT_LABEL_NAMES: tuple[str, ...] = ("id", "gender", "ethnicity", "hairstyle")

VOCABULARIES: dict[str, tuple[str, ...]] = {
    "gender": ("male", "female"),
    # UTKFace's race codes 0-3 and P-DESTRE's ethnicity codes map onto the first four.
    "ethnicity": ("white", "black", "asian", "indian", "other"),
    # bald/short/medium/long/ponytail: P-DESTRE (length); bangs/wavy/straight: CelebA (style).
    "hairstyle": ("bald", "short", "medium", "long", "ponytail", "bangs", "wavy", "straight"),
    # Extra labels some datasets give (the authors' code also used them).
    "hair_colour": ("black", "brown", "blond", "grey", "red", "white"),
    "beard": ("no", "yes"),
    "moustache": ("no", "yes"),
    "glasses": ("no", "normal", "sun"),
}

UNKNOWN_TOKENS = frozenset({"", "-1", "unknown", "?", "na", "n/a", "none"})


def validate_label_names(
    names: tuple[str, ...] | list[str],
    vocabularies: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[str, ...]:
    """Return ``names`` as a tuple after checking each has a vocabulary (or is ``"id"``).

    Raises:
        ValueError: an empty list, a duplicate, or a name without a vocabulary.
    """
    vocab = VOCABULARIES if vocabularies is None else vocabularies
    names = tuple(names)
    if not names:
        raise ValueError("label_names must not be empty")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate label names in {names}")
    for name in names:
        if name != ID_LABEL and name not in vocab:
            raise ValueError(
                f"label {name!r} has no class vocabulary; known: {sorted(vocab)} (or 'id')"
            )
    return names


def class_index(label: str, class_name: str) -> int:
    """Index of ``class_name`` in the vocabulary of ``label``.

    Raises:
        KeyError: unknown label or class (the message lists the valid ones).
    """
    classes = VOCABULARIES[label]
    try:
        return classes.index(class_name)
    except ValueError:
        raise KeyError(f"{class_name!r} is not a {label} class; valid: {classes}") from None


def parse_label_value(
    label: str, raw: str, vocabularies: Mapping[str, tuple[str, ...]] | None = None
) -> int | None:
    """Parse one labels-file cell: a class name (any case) or its index; ``None`` if unknown.

    Unknown is an empty cell or one of ``-1``, ``unknown``, ``?``, ``na``, ``n/a``, ``none``.

    Raises:
        ValueError: a value that is neither a class of ``label`` nor an index in range.
    """
    classes = (VOCABULARIES if vocabularies is None else vocabularies)[label]
    value = raw.strip().lower()
    if value in UNKNOWN_TOKENS:
        return None
    lowered = [c.lower() for c in classes]
    if value in lowered:
        return lowered.index(value)
    if value.isdigit():
        index = int(value)
        if index < len(classes):
            return index
    raise ValueError(
        f"{raw!r} is not a {label} class (valid: {', '.join(classes)} or 0-{len(classes) - 1})"
    )
