"""Counts of a dataset for logs and the model card: subjects, sequences, frames, labels, sources.

:func:`summarise` takes loaded tracklets; :func:`summarise_arrays` takes packed arrays (the
packer stores its result in the pack, :attr:`PackedFaces.summary`). Both return plain JSON-able
dicts of the same shape:

``{"subjects", "sequences", "frames", "sources": {key: {"subjects", "sequences", "frames",
"name", "licence", "url"}}, "sequences_per_subject": {"min", "median", "max",
"subjects_with_2_or_more"}, "frames_per_sequence": {"min", "median", "max",
"sequences_with_2_or_more"}, "labels": {name: {"known_sequences", "unknown_sequences",
"known_frames", "classes": {class: {"sequences", "frames"}}}}}``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from .labels import ID_LABEL, VOCABULARIES
from .tracklet import SOURCES, Tracklet

__all__ = ["summarise", "summarise_arrays"]


def _spread(counts: Sequence[int], key: str) -> dict[str, float | int]:
    if not counts:
        return {"min": 0, "median": 0, "max": 0, key: 0}
    arr = np.asarray(counts)
    return {
        "min": int(arr.min()),
        "median": float(np.median(arr)),
        "max": int(arr.max()),
        key: int((arr >= 2).sum()),
    }


def _source_info(key: str) -> dict[str, str]:
    info = SOURCES.get(key)
    if info is None:
        return {"name": key, "licence": "unknown", "url": ""}
    return {"name": info.name, "licence": info.licence, "url": info.url}


def summarise(
    tracklets: Sequence[Tracklet],
    label_names: Sequence[str] | None = None,
    vocabularies: Mapping[str, tuple[str, ...]] | None = None,
) -> dict:
    """Summarise loaded tracklets (see the module docstring for the result's shape).

    ``label_names`` defaults to every label present in the tracklets; ``"id"`` is skipped (it
    always is the subject).
    """
    vocab = {**VOCABULARIES, **(vocabularies or {})}
    subjects: dict[tuple[str, str], int] = Counter()
    per_source: dict[str, dict[str, set | int]] = defaultdict(
        lambda: {"subjects": set(), "sequences": 0, "frames": 0}
    )
    names = (
        list(label_names)
        if label_names is not None
        else sorted({n for t in tracklets for n in t.labels})
    )
    labels = {n: _empty_label(n, vocab) for n in names if n != ID_LABEL}
    for t in tracklets:
        subjects[(t.source, t.subject)] += 1
        src = per_source[t.source]
        src["subjects"].add(t.subject)  # type: ignore[union-attr]
        src["sequences"] += 1  # type: ignore[operator]
        src["frames"] += len(t)  # type: ignore[operator]
        for name, entry in labels.items():
            value = t.labels.get(name)
            if value is None:
                entry["unknown_sequences"] += 1
                continue
            entry["known_sequences"] += 1
            entry["known_frames"] += len(t)
            cls = entry["classes"].setdefault(
                _class_name(name, value, vocab), {"sequences": 0, "frames": 0}
            )
            cls["sequences"] += 1
            cls["frames"] += len(t)
    return {
        "subjects": len(subjects),
        "sequences": len(tracklets),
        "frames": int(sum(len(t) for t in tracklets)),
        "sources": {
            key: {
                "subjects": len(v["subjects"]),  # type: ignore[arg-type]
                "sequences": v["sequences"],
                "frames": v["frames"],
                **_source_info(key),
            }
            for key, v in sorted(per_source.items())
        },
        "sequences_per_subject": _spread(list(subjects.values()), "subjects_with_2_or_more"),
        "frames_per_sequence": _spread([len(t) for t in tracklets], "sequences_with_2_or_more"),
        "labels": labels,
    }


def summarise_arrays(
    *,
    subject: np.ndarray,
    sequence: np.ndarray,
    source: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    source_keys: Sequence[str],
    vocabularies: Mapping[str, tuple[str, ...]] | None = None,
) -> dict:
    """Summarise packed per-frame arrays (frames of a sequence contiguous)."""
    vocab = {**VOCABULARIES, **(vocabularies or {})}
    n = len(subject)
    starts = np.flatnonzero(np.r_[True, sequence[1:] != sequence[:-1]]) if n else np.zeros(0, int)
    seq_len = np.diff(np.r_[starts, n]).astype(int)
    seq_subject = subject[starts] if n else subject[:0]
    seq_source = source[starts] if n else source[:0]
    per_subject = np.bincount(seq_subject) if n else np.zeros(0, int)
    sources = {}
    for i, key in enumerate(source_keys):
        mask = seq_source == i
        sources[key] = {
            "subjects": len(np.unique(seq_subject[mask])),
            "sequences": int(mask.sum()),
            "frames": int(seq_len[mask].sum()),
            **_source_info(key),
        }
    out_labels = {}
    for j, name in enumerate(label_names):
        if name == ID_LABEL:
            continue
        entry = _empty_label(name, vocab)
        values = labels[starts, j] if n else labels[:0, j]
        known = values >= 0
        entry["known_sequences"] = int(known.sum())
        entry["unknown_sequences"] = int((~known).sum())
        entry["known_frames"] = int(seq_len[known].sum())
        for value in np.unique(values[known]):
            mask = values == value
            entry["classes"][_class_name(name, int(value), vocab)] = {
                "sequences": int(mask.sum()),
                "frames": int(seq_len[mask].sum()),
            }
        out_labels[name] = entry
    return {
        "subjects": len(np.unique(subject)),
        "sequences": len(starts),
        "frames": n,
        "sources": sources,
        "sequences_per_subject": _spread(
            per_subject[per_subject > 0].tolist(), "subjects_with_2_or_more"
        ),
        "frames_per_sequence": _spread(seq_len.tolist(), "sequences_with_2_or_more"),
        "labels": out_labels,
    }


def _empty_label(name: str, vocab: Mapping[str, tuple[str, ...]]) -> dict:
    return {"known_sequences": 0, "unknown_sequences": 0, "known_frames": 0, "classes": {}}


def _class_name(name: str, value: int, vocab: Mapping[str, tuple[str, ...]]) -> str:
    classes = vocab.get(name)
    return classes[value] if classes is not None and value < len(classes) else str(value)
