"""models.data.youtube_faces: frame_images_DB layout and the labeled_faces.txt boxes."""

from __future__ import annotations

import pytest

from models.data.crops import FaceToHead, FullFrame
from models.data.errors import AnnotationError, DatasetLayoutError, EmptySequenceError
from models.data.youtube_faces import load_youtube_faces

from .helpers import noise_image, write_image


def ytf(
    tmp_path, person="Aaron_Eckhart", videos=(("0", (555, 556, 1000)), ("1", (7, 8))), boxes=True
):
    db = tmp_path / "YouTubeFaces" / "frame_images_DB"
    lines = []
    for video, frames in videos:
        for f in frames:
            write_image(db / person / video / f"{video}.{f}.jpg", noise_image(90, 120, f))
            lines.append(f"{person}\\{video}\\{video}.{f}.jpg,0,60,45,40,50,0,0")
    if boxes:
        (db / f"{person}.labeled_faces.txt").write_text("\n".join(lines) + "\n")
    return tmp_path / "YouTubeFaces", db


def test_load_youtube_faces_videos_with_face_boxes(tmp_path):
    root, _ = ytf(tmp_path)
    tracklets = load_youtube_faces(root)
    assert [(t.subject, t.sequence, len(t)) for t in tracklets] == [
        ("Aaron_Eckhart", "0", 3),
        ("Aaron_Eckhart", "1", 2),
    ]
    assert [f.name for f in tracklets[0].frames] == ["0.555.jpg", "0.556.jpg", "0.1000.jpg"]
    assert isinstance(tracklets[0].crop, FaceToHead)
    assert tracklets[0].boxes[0].as_tuple() == (40, 20, 40, 50)  # centre (60,45), size 40x50


def test_missing_box_file_is_an_error_unless_full_frames_asked(tmp_path):
    root, _ = ytf(tmp_path, boxes=False)
    with pytest.raises(DatasetLayoutError, match=r"labeled_faces\.txt"):
        load_youtube_faces(root)
    tracklets = load_youtube_faces(root, missing_boxes="full")
    assert all(isinstance(t.crop, FullFrame) and t.boxes is None for t in tracklets)


def test_frame_without_box_and_box_without_frame_raise(tmp_path):
    root, db = ytf(tmp_path)
    write_image(db / "Aaron_Eckhart" / "1" / "1.9.jpg", noise_image(90, 120, 9))
    with pytest.raises(AnnotationError, match="1 frames have no box"):
        load_youtube_faces(root)
    (db / "Aaron_Eckhart" / "1" / "1.9.jpg").unlink()
    box_file = db / "Aaron_Eckhart.labeled_faces.txt"
    box_file.write_text(box_file.read_text() + "Aaron_Eckhart\\1\\1.99.jpg,0,60,45,40,50,0,0\n")
    with pytest.raises(AnnotationError, match="does not exist") as info:
        load_youtube_faces(root)
    assert info.value.line == 6


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("Aaron_Eckhart\\0\\0.555.jpg,0,60,45,40\n", "5 cells"),
        ("Aaron_Eckhart\\0\\0.555.jpg,0,60,45,40,50,0,0\n", "second box"),
        ("Someone\\0\\0.555.jpg,0,60,45,40,50,0,0\n", "is not Aaron_Eckhart"),
        ("", "bad box"),
    ],
)
def test_malformed_box_lines_raise(tmp_path, extra, match):
    root, db = ytf(tmp_path)
    box_file = db / "Aaron_Eckhart.labeled_faces.txt"
    text = box_file.read_text()
    if not extra:  # make the first box negative-sized
        text = text.replace("60,45,40,50", "60,45,-4,50", 1)
    box_file.write_text(text + extra)
    with pytest.raises(AnnotationError, match=match):
        load_youtube_faces(root)


def test_youtube_faces_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="frame_images_DB"):
        load_youtube_faces(tmp_path)
    root, db = ytf(tmp_path)
    write_image(db / "Aaron_Eckhart" / "0" / "frame1.jpg", noise_image(8, 8, 0))
    with pytest.raises(DatasetLayoutError, match=r"not <video>\.<frame>\.jpg"):
        load_youtube_faces(root)
    (db / "Aaron_Eckhart" / "0" / "frame1.jpg").unlink()
    write_image(db / "Aaron_Eckhart" / "0" / "1.5.jpg", noise_image(8, 8, 0))
    with pytest.raises(DatasetLayoutError, match="frame of video 1 in folder 0"):
        load_youtube_faces(root)
    (db / "Aaron_Eckhart" / "0" / "1.5.jpg").unlink()
    (db / "README").write_text("x")
    with pytest.raises(DatasetLayoutError, match="unexpected file"):
        load_youtube_faces(root)
    (db / "README").unlink()
    (db / "Empty_Person").mkdir()
    with pytest.raises(EmptySequenceError):
        load_youtube_faces(root)
