"""models.data.celeba: index CSV and official files, attribute -> label rules; real CelebA."""

from __future__ import annotations

import csv
import shutil

import pytest

from models.data.celeba import CELEBA_ALIGNED_CROP, CELEBA_ATTRIBUTES, celeba_labels, load_celeba
from models.data.errors import DatasetLayoutError, LabelsFileError
from models.data.labels import VOCABULARIES
from tests.media import MEDIA_DIR, needs_media

from .helpers import noise_image, write_image

HS = VOCABULARIES["hairstyle"]


def attrs(**on):
    return {a: on.get(a, False) for a in CELEBA_ATTRIBUTES}


@pytest.mark.parametrize(
    ("on", "style"),
    [
        ({"Wearing_Hat": True, "Bald": True}, None),
        ({"Bald": True, "Bangs": True}, "bald"),
        ({"Bangs": True, "Wavy_Hair": True}, "bangs"),
        ({"Wavy_Hair": True}, "wavy"),
        ({"Straight_Hair": True}, "straight"),
        ({"Straight_Hair": True, "Wavy_Hair": True}, None),
        ({}, None),
    ],
)
def test_hairstyle_rule(on, style):
    labels = celeba_labels(attrs(**on))
    assert labels.get("hairstyle") == (HS.index(style) if style else None)


def test_other_attribute_labels():
    labels = celeba_labels(attrs(Male=True, Black_Hair=True, Mustache=True, Eyeglasses=True))
    assert labels["gender"] == 0 and labels["hair_colour"] == 0 and labels["moustache"] == 1
    assert labels["beard"] == 1 and labels["glasses"] == VOCABULARIES["glasses"].index("normal")
    labels = celeba_labels(attrs(No_Beard=True, Black_Hair=True, Blond_Hair=True))
    assert labels["gender"] == 1 and "hair_colour" not in labels and labels["beard"] == 0


def write_index(path, rows, header=None):
    header = header or ["path", "file", "identity", *CELEBA_ATTRIBUTES]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for rel, identity, on in rows:
            w.writerow(
                [
                    rel,
                    rel.split("/")[-1],
                    identity,
                    *("1" if a in on else "-1" for a in CELEBA_ATTRIBUTES),
                ]
            )
    return path


@pytest.fixture
def celeba_index(tmp_path):
    root = tmp_path / "celeba10k"
    rows = [
        ("by_identity/2880/000001.jpg", 2880, {"Wavy_Hair"}),
        ("by_identity/2880/000404.jpg", 2880, {"Bangs"}),
        ("singletons/000002.jpg", 2937, {"Male"}),
    ]
    for rel, _, _ in rows:
        write_image(root / rel, noise_image(109, 89, len(rel)))
    return root, write_index(tmp_path / "index.csv", rows)


def test_load_celeba_index(celeba_index):
    root, index = celeba_index
    tracklets = load_celeba(root, index)
    assert [(t.subject, t.sequence) for t in tracklets] == [
        ("2880", "000001"),
        ("2880", "000404"),
        ("2937", "000002"),
    ]
    assert (
        tracklets[0].labels["hairstyle"] == HS.index("wavy") and tracklets[0].labels["gender"] == 1
    )
    assert tracklets[2].labels["gender"] == 0 and tracklets[2].crop == CELEBA_ALIGNED_CROP


def test_celeba_index_errors(celeba_index, tmp_path):
    root, index = celeba_index
    text = index.read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text(text.replace("Young", "Old", 1))
    with pytest.raises(LabelsFileError, match="unknown column") as info:
        load_celeba(root, bad)
    assert info.value.field == "Old"
    bad.write_text(text.replace(",Young", "", 1))
    with pytest.raises(LabelsFileError, match=r"cells|missing column"):
        load_celeba(root, bad)
    lines = text.splitlines()
    bad.write_text("\n".join([lines[0], lines[1].replace(",-1", ",0", 1), *lines[2:]]) + "\n")
    with pytest.raises(LabelsFileError, match="not 1 or -1") as info:
        load_celeba(root, bad)
    assert info.value.line == 2
    bad.write_text(
        "\n".join([lines[0], lines[1].replace("000001.jpg,2880", "000009.jpg,2880"), *lines[2:]])
        + "\n"
    )
    with pytest.raises(LabelsFileError, match="is not the name of"):
        load_celeba(root, bad)


def test_celeba_listed_and_unlisted_images(celeba_index):
    root, index = celeba_index
    write_image(root / "singletons" / "000003.jpg", noise_image(109, 89, 3))
    with pytest.raises(DatasetLayoutError, match="not listed"):
        load_celeba(root, index)
    (root / "singletons" / "000003.jpg").unlink()
    (root / "singletons" / "000002.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match="listed image not found"):
        load_celeba(root, index)


def test_load_celeba_official_files(tmp_path):
    root = tmp_path / "CelebA"
    for i in (1, 2):
        write_image(root / "img_align_celeba" / f"{i:06d}.jpg", noise_image(218, 178, i))
    (root / "identity_CelebA.txt").write_text("000001.jpg 2880\n000002.jpg 2937\n")
    values = lambda on: " ".join(" 1" if a in on else "-1" for a in CELEBA_ATTRIBUTES)  # noqa: E731
    (root / "list_attr_celeba.txt").write_text(
        f"2\n{' '.join(CELEBA_ATTRIBUTES)}\n"
        f"000001.jpg {values({'Male', 'Bald'})}\n000002.jpg {values(set())}\n"
    )
    tracklets = load_celeba(root)
    assert [(t.subject, dict(t.labels)["gender"]) for t in tracklets] == [("2880", 0), ("2937", 1)]
    assert tracklets[0].labels["hairstyle"] == HS.index("bald")
    (root / "identity_CelebA.txt").write_text("000001.jpg 2880\n000002.jpg 2937\n000003.jpg 1\n")
    with pytest.raises(LabelsFileError, match=r"no attributes for 000003\.jpg"):
        load_celeba(root)


@needs_media
def test_real_celeba_handful(tmp_path):
    real = MEDIA_DIR / "datasets" / "celeba10k"
    lines = (real / "labels" / "index.csv").read_text().splitlines()
    root = tmp_path / "celeba"
    kept = [lines[0]]
    for line in lines[1:7]:
        rel = line.split(",")[0]
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(real / rel, root / rel)
        kept.append(line)
    (tmp_path / "index.csv").write_text("\n".join(kept) + "\n")
    tracklets = load_celeba(root, tmp_path / "index.csv")
    assert len(tracklets) == 6 and all("gender" in t.labels for t in tracklets)
