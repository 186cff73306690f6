"""models.data.pdestre: annotation files + videos, packed through a real (lossless) MP4."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.errors import AnnotationError, DatasetLayoutError, TooManyUnreadableError
from models.data.labels import VOCABULARIES
from models.data.pack import PackedFaces, pack_tracklets
from models.data.pdestre import load_pdestre
from shared.video_io import LosslessWriter

W, H, FRAMES = 160, 120, 6
VIDEO = "08-11-2019-1-1"


def frame_colour(i):
    return (20 + 30 * i, 200 - 25 * i, 90)


def write_video(path, frames=FRAMES):
    path.parent.mkdir(parents=True, exist_ok=True)
    with LosslessWriter(path, W, H, 30, codec="libx264rgb", container_format="mp4") as writer:
        for i in range(frames):
            writer.write(np.full((H, W, 3), frame_colour(i), np.uint8))
    return path


def line(frame, person, x, y, h, w, gender=0, ethnicity=2, hairstyle=3, glasses=2):
    cells = [
        frame,
        person,
        x,
        y,
        h,
        w,
        1,
        0,
        0,
        0,
        gender,
        3,
        2,
        1,
        ethnicity,
        1,
        hairstyle,
        1,
        1,
        glasses,
        3,
        0,
        2,
        1,
        6,
        0,
    ]
    assert len(cells) == 26
    return ",".join(str(c) for c in cells)


@pytest.fixture
def pdestre_root(tmp_path):
    root = tmp_path / "P-DESTRE"
    write_video(root / "videos" / f"{VIDEO}.MP4")
    lines = []
    for f in range(1, 5):  # person 7 in frames 1-4 (1-based), person 12 in 2-3, one unidentified
        lines.append(line(f, 7, 10 + f, 20, 80, 40))
        if f in (2, 3):
            lines.append(line(f, 12, 100, 10, 60, 30, gender=1, ethnicity=4, hairstyle=0))
    lines.append(line(1, -1, 0, 0, 10, 10))
    (root / "annotation").mkdir()
    (root / "annotation" / f"{VIDEO}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_load_pdestre_one_tracklet_per_person_and_video(pdestre_root):
    tracklets = load_pdestre(pdestre_root)
    by = {t.subject: t for t in tracklets}
    assert set(by) == {"7", "12"}
    seven = by["7"]
    assert seven.sequence == VIDEO and seven.frame_numbers == (0, 1, 2, 3)
    assert seven.boxes[0].as_tuple() == (11, 20, 40, 80)  # x, y, then w from column 5, h from 4
    hs = VOCABULARIES["hairstyle"]
    assert seven.labels == {
        "gender": 0,
        "ethnicity": 2,
        "hairstyle": hs.index("long"),
        "glasses": 0,
    }
    assert by["12"].labels == {
        "gender": 1,
        "hairstyle": hs.index("bald"),
        "glasses": 0,
    }  # ethnicity 4 = unknown


def test_pdestre_packs_the_right_video_frames(pdestre_root, tmp_path):
    tracklets = load_pdestre(pdestre_root, frame_step=2)
    out = pack_tracklets(tracklets, tmp_path / "p.npz", size=16)
    pack = PackedFaces.open(out)
    # Subjects in natural order ("7" < "12"). Person 12 is in frames 2-3: step 2 keeps frame 2,
    # decode index 1.
    paths = pack.paths()
    assert paths == [f"{VIDEO}.MP4#0", f"{VIDEO}.MP4#2", f"{VIDEO}.MP4#1"]
    for row, index in enumerate((0, 2, 1)):
        assert np.abs(pack.image(row).astype(int) - frame_colour(index)).max() <= 2


def test_pdestre_video_shorter_than_annotations_is_counted_then_raises(pdestre_root, tmp_path):
    write_video(pdestre_root / "videos" / f"{VIDEO}.MP4", frames=2)
    with pytest.raises(TooManyUnreadableError, match="video ends before frame 2"):
        pack_tracklets(load_pdestre(pdestre_root), tmp_path / "p.npz", size=16)
    assert not (tmp_path / "p.npz").exists()


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("1,7,10,20,80,40", "6 cells, expected 26"),
        (line(1, 7, 10, 20, 80, 40).replace(",1,0,0,0,", ",x,0,0,0,", 1), "not a number"),
        (line(0, 7, 10, 20, 80, 40), "first frame"),
        (line(1, 7, 10, 20, 0, 40), "empty box"),
        (line(1, 99, 10, 20, 80, 40, hairstyle=9), "not in the hairstyle table"),
        (line(1, 99, 10, 20, 80, 40, gender=1.5), "not an integer"),
        (line(1, 7, 10, 20, 80, 40), "appears twice"),
    ],
)
def test_bad_annotation_lines_raise_with_file_and_line(pdestre_root, bad, match):
    ann = pdestre_root / "annotation" / f"{VIDEO}.txt"
    ann.write_text(ann.read_text() + bad + "\n")
    with pytest.raises(AnnotationError, match=match) as info:
        load_pdestre(pdestre_root)
    assert info.value.path == ann and info.value.line == 8


def test_pdestre_layout_errors(pdestre_root):
    (pdestre_root / "annotation" / "09-11-2019-1-1.txt").write_text(line(1, 3, 0, 0, 10, 10) + "\n")
    with pytest.raises(DatasetLayoutError, match="no video 09-11-2019-1-1"):
        load_pdestre(pdestre_root)
    with pytest.raises(DatasetLayoutError, match="annotation folder not found"):
        load_pdestre(pdestre_root, annotations_dir="annotations")


def test_pdestre_min_frames_drops_short_tracklets(pdestre_root):
    assert {t.subject for t in load_pdestre(pdestre_root, min_frames=3)} == {"7"}


def test_pack_cli_reads_pdestre(pdestre_root, tmp_path):
    from models.cli import main as uunet_train

    out = tmp_path / "p.npz"
    args = ["pack", "--out", str(out), "--size", "16", "--pdestre", str(pdestre_root)]
    assert uunet_train([*args, "--pdestre-step", "1"]) == 0
    pack = PackedFaces.open(out)
    assert len(pack) == sum(len(t) for t in load_pdestre(pdestre_root))
