"""models.data.tracklet_folder: the plain <subject>/<sequence>/<frame> layout and labels CSV."""

from __future__ import annotations

import pytest

from models.data.errors import (
    DatasetLayoutError,
    EmptySequenceError,
    ImageReadError,
    LabelsFileError,
)
from models.data.labels import VOCABULARIES
from models.data.tracklet_folder import load_tracklet_folder

from .helpers import noise_image, write_image


def make_folder(
    root, subjects=("alice", "bob"), sequences=("cam1", "cam2"), frames=("1.jpg", "2.jpg", "10.jpg")
):
    for i, s in enumerate(subjects):
        for j, q in enumerate(sequences):
            for k, f in enumerate(frames):
                write_image(root / s / q / f, noise_image(20, 16, i * 100 + j * 10 + k))
    return root


def write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_every_sequence_in_natural_frame_order(tmp_path):
    root = make_folder(tmp_path / "data")
    tracklets = load_tracklet_folder(root)
    assert [(t.subject, t.sequence) for t in tracklets] == [
        ("alice", "cam1"), ("alice", "cam2"), ("bob", "cam1"), ("bob", "cam2"),
    ]  # fmt: skip
    assert [f.name for f in tracklets[0].frames] == ["1.jpg", "2.jpg", "10.jpg"]
    assert all(t.labels == {} and t.source == "custom" for t in tracklets)


def test_subject_labels_csv_by_name_or_index(tmp_path):
    root = make_folder(tmp_path / "data")
    csv = write_csv(
        tmp_path / "labels.csv", "subject,gender,hairstyle\nalice,Female,long\nbob,0,\n"
    )
    by = {(t.subject, t.sequence): t for t in load_tracklet_folder(root, csv)}
    assert by[("alice", "cam2")].labels == {
        "gender": 1,
        "hairstyle": VOCABULARIES["hairstyle"].index("long"),
    }
    assert by[("bob", "cam1")].labels == {"gender": 0}  # empty cell = unknown


def test_per_sequence_labels_csv(tmp_path):
    root = make_folder(tmp_path / "data")
    csv = write_csv(tmp_path / "l.csv", "subject,sequence,hairstyle\nalice,cam2,bald\n")
    by = {(t.subject, t.sequence): t for t in load_tracklet_folder(root, csv)}
    assert by[("alice", "cam2")].labels == {"hairstyle": 0}
    assert by[("alice", "cam1")].labels == {}


@pytest.mark.parametrize(
    ("text", "field", "match"),
    [
        ("subject,gender,shoe_size\nalice,f,42\n", "shoe_size", "unknown label column"),
        ("subject,id\nalice,3\n", "id", "'id'"),
        ("name,gender\nalice,f\n", None, "start with 'subject'"),
        ("subject,gender\nalice,x\n", "gender", "not a gender class"),
        ("subject,gender\nalice,7\n", "gender", "not a gender class"),
        ("subject,gender\ncarol,female\n", "subject", "not in the dataset"),
        ("subject,gender\nalice,female\nalice,male\n", "subject", "duplicate row"),
        ("subject,gender,gender\nalice,f,f\n", "gender", "duplicate column"),
        ("subject,sequence,gender\nalice,cam9,female\n", "sequence", "not in the dataset"),
    ],
)
def test_bad_labels_csv_raises_naming_the_field(tmp_path, text, field, match):
    root = make_folder(tmp_path / "data")
    csv = write_csv(tmp_path / "labels.csv", text)
    with pytest.raises(LabelsFileError, match=match) as info:
        load_tracklet_folder(root, csv)
    assert info.value.field == field and info.value.path == csv


def test_labels_csv_cell_count_and_missing_file(tmp_path):
    root = make_folder(tmp_path / "data")
    with pytest.raises(LabelsFileError, match="line 2"):
        load_tracklet_folder(root, write_csv(tmp_path / "a.csv", "subject,gender\nalice,f,extra\n"))
    with pytest.raises(LabelsFileError, match="not found"):
        load_tracklet_folder(root, tmp_path / "missing.csv")


def test_custom_vocabulary_allows_a_new_label(tmp_path):
    root = make_folder(tmp_path / "data")
    csv = write_csv(tmp_path / "l.csv", "subject,uniform\nalice,yes\n")
    tracklets = load_tracklet_folder(root, csv, vocabularies={"uniform": ("no", "yes")})
    assert tracklets[0].labels == {"uniform": 1}


def test_missing_root_and_stray_files_are_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="not found"):
        load_tracklet_folder(tmp_path / "nope")
    root = make_folder(tmp_path / "data")
    (root / "labels.csv").write_text("subject,gender\n")
    with pytest.raises(DatasetLayoutError, match="unexpected file") as info:
        load_tracklet_folder(root)
    assert info.value.path == root / "labels.csv"
    (root / "labels.csv").unlink()
    (root / "alice" / "cam1" / "notes.txt").write_text("hi")
    with pytest.raises(DatasetLayoutError, match="only images"):
        load_tracklet_folder(root)


def test_frame_folders_nested_one_level_too_deep_are_rejected(tmp_path):
    root = tmp_path / "data"
    write_image(root / "alice" / "cam1" / "extra" / "1.jpg", noise_image(8, 8, 0))
    with pytest.raises(DatasetLayoutError, match="only images"):
        load_tracklet_folder(root)


def test_empty_sequence_and_subject_raise(tmp_path):
    root = make_folder(tmp_path / "data")
    (root / "alice" / "cam3").mkdir()
    with pytest.raises(EmptySequenceError, match="no frame") as info:
        load_tracklet_folder(root)
    assert info.value.path == root / "alice" / "cam3"
    (root / "alice" / "cam3").rmdir()
    (root / "carol").mkdir()
    with pytest.raises(EmptySequenceError, match="no sequence"):
        load_tracklet_folder(root)


def test_corrupt_and_empty_images_raise_naming_the_file(tmp_path):
    root = make_folder(tmp_path / "data")
    bad = root / "bob" / "cam2" / "2.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(ImageReadError, match="signature") as info:
        load_tracklet_folder(root)
    assert info.value.path == bad
    bad.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        load_tracklet_folder(root)
