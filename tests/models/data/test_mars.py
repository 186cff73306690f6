"""models.data.mars: the MARS bbox_train/bbox_test layout, exact file names."""

from __future__ import annotations

import pytest

from models.data.crops import HeadTop
from models.data.errors import DatasetLayoutError, EmptySequenceError
from models.data.mars import load_mars

from .helpers import noise_image, write_image


def mars_frame(root, split, pid, cam, track, frame):
    name = f"{pid}C{cam}T{track:04d}F{frame:03d}.jpg"
    return write_image(root / split / pid / name, noise_image(256, 128, frame))


@pytest.fixture
def mars_root(tmp_path):
    root = tmp_path / "MARS"
    for f in (3, 1, 2):
        mars_frame(root, "bbox_train", "0001", 1, 1, f)
    mars_frame(root, "bbox_train", "0001", 6, 2, 1)
    mars_frame(root, "bbox_train", "0003", 2, 1, 5)
    mars_frame(root, "bbox_test", "0002", 1, 1, 1)
    mars_frame(root, "bbox_test", "0000", 1, 1, 1)  # distractor
    mars_frame(root, "bbox_test", "00-1", 1, 1, 1)  # junk
    return root


def test_load_mars_groups_camera_and_tracklet_in_frame_order(mars_root):
    tracklets = load_mars(mars_root)
    keys = [(t.subject, t.sequence, len(t)) for t in tracklets]
    assert keys == [
        ("0001", "C1T0001", 3),
        ("0001", "C6T0002", 1),
        ("0003", "C2T0001", 1),
        ("0002", "C1T0001", 1),
    ]
    assert [f.name for f in tracklets[0].frames] == [
        "0001C1T0001F001.jpg",
        "0001C1T0001F002.jpg",
        "0001C1T0001F003.jpg",
    ]
    assert all(isinstance(t.crop, HeadTop) and t.source == "mars" for t in tracklets)


def test_load_mars_distractors_only_on_request(mars_root):
    subjects = {t.subject for t in load_mars(mars_root, include_distractors=True)}
    assert {"0000", "00-1"} <= subjects
    assert {t.subject for t in load_mars(mars_root, splits=("bbox_test",))} == {"0002"}


def test_load_mars_labels_csv(mars_root, tmp_path):
    csv = tmp_path / "mars_labels.csv"
    csv.write_text("subject,gender,hairstyle\n0001,male,short\n")
    by = {t.subject: t.labels for t in load_mars(mars_root, labels_csv=csv)}
    assert by["0001"] == {"gender": 0, "hairstyle": 1} and by["0002"] == {}


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("0001_C1T0001F001.jpg", "not <pid>C<cam>T<tracklet>F<frame>.jpg"),
        ("0001C1T0001F001.png", "only images|not <pid>"),
        ("0002C1T0001F009.jpg", "file of identity 0002 in folder 0001"),
    ],
)
def test_load_mars_rejects_bad_file_names(mars_root, name, match):
    write_image(mars_root / "bbox_train" / "0001" / name, noise_image(8, 8, 0))
    with pytest.raises(DatasetLayoutError, match=match):
        load_mars(mars_root)


def test_load_mars_layout_errors(mars_root, tmp_path):
    with pytest.raises(DatasetLayoutError, match="no MARS split"):
        load_mars(tmp_path / "MARS" / "bbox_train" / "0001")
    mars_frame(mars_root, "bbox_test", "0001", 3, 1, 1)
    with pytest.raises(DatasetLayoutError, match="also appears in bbox_train"):
        load_mars(mars_root)


def test_load_mars_bad_identity_folder_and_empty_identity(tmp_path):
    root = tmp_path / "M"
    write_image(root / "bbox_train" / "person1" / "x.jpg", noise_image(8, 8, 0))
    with pytest.raises(DatasetLayoutError, match="not 4 digits"):
        load_mars(root)
    (root / "bbox_train" / "person1" / "x.jpg").unlink()
    (root / "bbox_train" / "person1").rmdir()
    (root / "bbox_train" / "0007").mkdir()
    with pytest.raises(EmptySequenceError):
        load_mars(root)


def test_load_mars_duplicate_frame_number_raises(mars_root):
    write_image(mars_root / "bbox_train" / "0001" / "0001C1T0001F01.jpg", noise_image(8, 8, 0))
    with pytest.raises(DatasetLayoutError, match="appears twice"):
        load_mars(mars_root)
