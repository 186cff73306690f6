"""Identity folders of the people a training pack held out, for measuring a model honestly.

    python -m models.evaluation.heldout --pack runs/faces64.npz --fraction 0.05 --seed 0 \\
        --source lfw --out runs/heldout_lfw

writes ``<out>/<person>/<photo>`` links to the original photos of every subject of ``--source``
that ``split_subjects(pack, fraction, seed)`` (the split the training configs use) kept out of
training and that has at least ``--min-photos`` photos, ready for ``--identities`` of
``models.evaluation.card`` and the evaluation suite. Exit status 0, or 2 for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["heldout_folders", "main"]


def heldout_folders(
    pack_path: Path,
    out: Path,
    *,
    fraction: float,
    seed: int,
    source: str,
    min_photos: int = 2,
) -> dict[str, int]:
    """Link the held-out subjects' original photos into ``out``; returns counts.

    Raises:
        ValueError: unknown source, a fraction outside (0, 1), or original files missing.
    """
    from models.data import PackedFaces
    from models.face_source import split_subjects

    pack = PackedFaces.open(pack_path)
    if source not in pack.sources:
        raise ValueError(f"{pack_path}: no source {source!r} (it has {pack.sources})")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    root = Path(pack.meta["sources"][pack.sources.index(source)]["root"])
    _, held = split_subjects(pack, fraction, seed)
    source_id = pack.sources.index(source)
    paths = pack.paths()
    people = photos = 0
    for subject in held:
        rows = np.flatnonzero((pack.subject == subject) & (pack.source == source_id))
        if len(rows) < min_photos:
            continue
        person = pack.subject_names[subject].split("/", 1)[-1]
        folder = out / person
        folder.mkdir(parents=True, exist_ok=True)
        for row in rows:
            original = root / paths[row]
            if not original.is_file():
                raise ValueError(f"original photo missing: {original}")
            link = folder / paths[row].replace("/", "__")  # unique even if names repeat
            if not link.exists():
                os.symlink(original.resolve(), link)
            photos += 1
        people += 1
    return {"people": people, "photos": photos}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, write the folders, print the counts; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m models.evaluation.heldout")
    parser.add_argument("--pack", type=Path, required=True, help="the training pack (.npz)")
    parser.add_argument("--fraction", type=float, required=True, help="data.holdout_fraction")
    parser.add_argument("--seed", type=int, default=0, help="the training config's seed")
    parser.add_argument("--source", default="lfw", help="pack source to take people from")
    parser.add_argument("--min-photos", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        counts = heldout_folders(
            args.pack,
            args.out,
            fraction=args.fraction,
            seed=args.seed,
            source=args.source,
            min_photos=args.min_photos,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 (CLI output)
        return 2
    print(f"{counts['people']} held-out people, {counts['photos']} photos in {args.out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
