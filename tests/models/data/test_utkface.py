"""models.data.utkface: labels from the published file names (with their quirks); real files."""

from __future__ import annotations

import shutil

import pytest

from models.data.errors import DatasetLayoutError
from models.data.utkface import load_utkface
from tests.media import MEDIA_DIR, needs_media

from .helpers import noise_image, write_image


def test_load_utkface_names_give_gender_and_ethnicity(tmp_path):
    names = [
        "26_1_2_20170116174525125.jpg.chip.jpg",  # usual
        "61_1_20170109142408075.jpg.chip.jpg",  # no race field
        "28_1_2_201701161846515488.jpg.chip.jpg",  # 18-digit date
        "55_0_0_20170116232725357jpg.chip.jpg",  # missing dot
        "40_0_3_20170117153505438.jpg",  # plain crop name
    ]
    for i, name in enumerate(names):
        write_image(tmp_path / "UTKFace" / name, noise_image(100, 100, i))
    by = {t.subject: t.labels for t in load_utkface(tmp_path)}
    assert by["26_1_2_20170116174525125"] == {"gender": 1, "ethnicity": 2}
    assert by["61_1_20170109142408075"] == {"gender": 1}
    assert by["55_0_0_20170116232725357jpg"] == {"gender": 0, "ethnicity": 0}
    assert by["40_0_3_20170117153505438"] == {"gender": 0, "ethnicity": 3}
    assert len(by) == 5


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("26_2_2_20170116174525125.jpg.chip.jpg", "gender code 2"),
        ("26_1_7_20170116174525125.jpg.chip.jpg", "race code 7"),
        ("face_001.jpg", "not <age>_<gender>"),
    ],
)
def test_bad_utkface_names_raise(tmp_path, name, match):
    write_image(tmp_path / name, noise_image(10, 10, 0))
    with pytest.raises(DatasetLayoutError, match=match):
        load_utkface(tmp_path)


@needs_media
def test_real_utkface_handful(tmp_path):
    real = sorted((MEDIA_DIR / "datasets" / "utkface" / "UTKFace").iterdir())[:200:40]
    for path in real:
        shutil.copy(path, tmp_path / path.name)
    tracklets = load_utkface(tmp_path)
    assert len(tracklets) == 5 and all("gender" in t.labels for t in tracklets)
