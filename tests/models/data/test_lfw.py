"""models.data.lfw: person folders, <Person>_NNNN.jpg names, the gender CSV; real LFW files."""

from __future__ import annotations

import shutil

import pytest

from models.data.errors import DatasetLayoutError, EmptySequenceError, LabelsFileError
from models.data.lfw import load_lfw
from models.data.pack import PackedFaces, pack_tracklets
from tests.media import MEDIA_DIR, needs_media

from .helpers import noise_image, write_image

HEADER = "path,identity,gender\r\n"


def lfw(tmp_path, people=(("AJ_Cook", 1), ("Aaron_Peirsol", 3))):
    root = tmp_path / "lfw"
    for person, n in people:
        for i in range(1, n + 1):
            write_image(
                root / "lfw-deepfunneled" / person / f"{person}_{i:04d}.jpg", noise_image(96, 96, i)
            )
    return root


def test_load_lfw_each_image_is_a_sequence_with_gender(tmp_path):
    root = lfw(tmp_path)
    csv = tmp_path / "g.csv"
    csv.write_text(
        HEADER
        + "AJ_Cook/AJ_Cook_0001.jpg,AJ_Cook,F\r\n"
        + "Aaron_Peirsol/Aaron_Peirsol_0001.jpg,Aaron_Peirsol,M\r\n"
        + "Aaron_Peirsol/Aaron_Peirsol_0002.jpg,Aaron_Peirsol,both\r\n"
        + "Aaron_Peirsol/Aaron_Peirsol_0003.jpg,Aaron_Peirsol,\r\n"
    )
    tracklets = load_lfw(root, csv)
    assert [(t.subject, t.sequence, dict(t.labels)) for t in tracklets] == [
        ("AJ_Cook", "0001", {"gender": 1}),
        ("Aaron_Peirsol", "0001", {"gender": 0}),
        ("Aaron_Peirsol", "0002", {}),
        ("Aaron_Peirsol", "0003", {}),
    ]
    assert all(t.source == "lfw" and len(t) == 1 for t in tracklets)
    assert load_lfw(root / "lfw-deepfunneled")[0].labels == {}  # images folder directly, no CSV


@pytest.mark.parametrize(
    ("rows", "field", "match"),
    [
        ("path,identity,sex\r\n", "sex", "columns must be"),
        (HEADER + "AJ_Cook/AJ_Cook_0001.jpg,AJ_Cook,X\r\n", "gender", "unknown gender code"),
        (HEADER + "AJ_Cook/AJ_Cook_0009.jpg,AJ_Cook,F\r\n", "path", "not in"),
        (HEADER + "AJ_Cook/AJ_Cook_0001.jpg,Someone,F\r\n", "identity", "identity 'Someone'"),
        (HEADER + "AJ_Cook/AJ_Cook_0001.jpg,AJ_Cook,F\r\n" * 2, "path", "duplicate"),
    ],
)
def test_bad_gender_csv_raises(tmp_path, rows, field, match):
    root = lfw(tmp_path)
    csv = tmp_path / "g.csv"
    csv.write_text(rows)
    with pytest.raises(LabelsFileError, match=match) as info:
        load_lfw(root, csv)
    assert info.value.field == field


def test_lfw_bad_names_and_empty_person(tmp_path):
    root = lfw(tmp_path)
    write_image(root / "lfw-deepfunneled" / "AJ_Cook" / "Someone_0001.jpg", noise_image(8, 8, 0))
    with pytest.raises(DatasetLayoutError, match=r"AJ_Cook_NNNN\.jpg"):
        load_lfw(root)
    (root / "lfw-deepfunneled" / "AJ_Cook" / "Someone_0001.jpg").unlink()
    (root / "lfw-deepfunneled" / "Nobody").mkdir()
    with pytest.raises(EmptySequenceError):
        load_lfw(root)


@needs_media
def test_real_lfw_handful_loads_and_packs(tmp_path):
    real = MEDIA_DIR / "datasets" / "lfw"
    root = tmp_path / "lfw"
    people = ["Aaron_Peirsol", "AJ_Cook"]
    rows = [HEADER.strip()]
    for line in (real / "labels" / "lfw_gender.csv").read_text().splitlines():
        if line.split(",")[0].split("/")[0] in people:
            rows.append(line)
    for person in people:
        shutil.copytree(real / "lfw-deepfunneled" / person, root / "lfw-deepfunneled" / person)
    (tmp_path / "g.csv").write_text("\n".join(rows) + "\n")
    tracklets = load_lfw(root, tmp_path / "g.csv")
    assert len(tracklets) == 5 and {t.labels.get("gender") for t in tracklets} == {0, 1}
    pack = PackedFaces.open(pack_tracklets(tracklets, tmp_path / "lfw.npz", size=64))
    assert pack.images.shape == (5, 64, 64, 3) and pack.images.std() > 20
