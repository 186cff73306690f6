"""models.evaluation.heldout: identity folders of exactly the people training never saw."""

from __future__ import annotations

import numpy as np

from models.data import PackedFaces, load_tracklet_folder, make_synthetic_tracklets, pack_tracklets
from models.evaluation.heldout import main
from models.face_source import split_subjects


def test_heldout_folders_link_only_held_out_people(tmp_path):
    made = make_synthetic_tracklets(
        tmp_path / "faces", n_subjects=12, sequences=2, frames=1, size=32, seed=0
    )
    tracklets = load_tracklet_folder(made.tracklets_root, made.labels_csv)
    pack_path = pack_tracklets(tracklets, tmp_path / "p.npz", size=16)
    pack = PackedFaces.open(pack_path)
    source = pack.sources[0]
    out = tmp_path / "held"
    assert (
        main(
            ["--pack", str(pack_path), "--fraction", "0.25", "--source", source, "--out", str(out)]
        )
        == 0
    )
    train, held = split_subjects(pack, 0.25, 0)
    held_names = {pack.subject_names[s].split("/", 1)[-1] for s in held}
    train_names = {pack.subject_names[s].split("/", 1)[-1] for s in train}
    linked = {p.name for p in out.iterdir()}
    assert linked == held_names and not linked & train_names
    photos = sorted(out.rglob("*.png"))
    assert len(photos) == 2 * len(held) and all(
        p.is_symlink() and p.resolve().is_file() for p in photos
    )
    assert np.all([p.resolve().is_relative_to(made.tracklets_root.resolve()) for p in photos])


def test_heldout_unknown_source_exits_2(tmp_path, capsys):
    made = make_synthetic_tracklets(
        tmp_path / "faces", n_subjects=4, sequences=1, frames=1, size=32, seed=0
    )
    pack_path = pack_tracklets(
        load_tracklet_folder(made.tracklets_root), tmp_path / "p.npz", size=16
    )
    assert (
        main(
            [
                "--pack",
                str(pack_path),
                "--fraction",
                "0.5",
                "--source",
                "lfw",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "no source" in capsys.readouterr().err
