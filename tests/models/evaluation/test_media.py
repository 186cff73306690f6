import cv2
import numpy as np
import pytest

from models.evaluation.errors import EvaluationError
from models.evaluation.media import list_identity_images, list_videos, load_box_file, read_rgb
from shared.geometry import Box


def test_load_box_file_parses_boxes_and_skips_ignored(tmp_path):
    xml = tmp_path / "truth.xml"
    xml.write_text(
        "<?xml version='1.0'?><dataset><images>"
        "<image file='a.jpg' width='100' height='80'>"
        "<box top='10' left='20' width='30' height='30'/>"
        "<box top='70' left='90' width='30' height='30'/>"
        "<box top='1' left='1' width='5' height='5' ignore='1'/>"
        "</image></images></dataset>"
    )
    (item,) = load_box_file(xml)
    assert item.path == tmp_path / "a.jpg"
    assert item.boxes == (Box(20, 10, 30, 30), Box(90, 70, 10, 10))


def test_load_box_file_malformed_raises(tmp_path):
    xml = tmp_path / "bad.xml"
    xml.write_text("<dataset><images><image file='a.jpg'><box top='x'/></image></images></dataset>")
    with pytest.raises(EvaluationError, match=r"a\.jpg"):
        load_box_file(xml)
    (tmp_path / "broken.xml").write_text("<dataset>")
    with pytest.raises(EvaluationError, match=r"broken\.xml"):
        load_box_file(tmp_path / "broken.xml")


def test_list_identity_images_drops_small_identities(tmp_path):
    for person, count in (("ann", 2), ("bob", 1)):
        (tmp_path / person).mkdir()
        for i in range(count):
            cv2.imwrite(str(tmp_path / person / f"{i}.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "ann" / "notes.txt").write_text("not an image")
    found = list_identity_images(tmp_path, min_images=2)
    assert list(found) == ["ann"] and len(found["ann"]) == 2


def test_list_identity_images_wrong_layout_raises(tmp_path):
    cv2.imwrite(str(tmp_path / "flat.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(EvaluationError, match="<person>"):
        list_identity_images(tmp_path)


def test_read_rgb_grey_and_corrupt(tmp_path):
    cv2.imwrite(str(tmp_path / "g.pgm"), np.full((3, 5), 9, np.uint8))
    assert read_rgb(tmp_path / "g.pgm").shape == (3, 5, 3)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(EvaluationError, match=r"bad\.jpg"):
        read_rgb(tmp_path / "bad.jpg")


def test_list_videos_absent_folder_is_empty(tmp_path):
    assert list_videos(tmp_path / "nope") == []
