"""models.data.pack: pack round trip (raw/png/jpeg/webp), memmap, unreadable frames, bad packs."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

from models.data.crops import HeadTop, RelativeBox
from models.data.errors import DatasetError, PackFormatError, TooManyUnreadableError
from models.data.pack import PackedFaces, pack_tracklets
from models.data.tracklet import Tracklet
from shared.geometry import Box

from .helpers import noise_image, solid, write_image


@pytest.fixture
def tracklets(tmp_path):
    """Two sources; subject 'b' has two sequences; colours identify each frame."""
    out = []
    colours = iter(
        [(200, 10, 10), (10, 200, 10), (10, 10, 200), (120, 120, 0), (0, 120, 120), (90, 30, 160)]
    )
    for source, subject, sequence, n, labels in [
        ("lfw", "b", "2", 1, {"gender": 1}),
        ("lfw", "b", "1", 2, {"gender": 1, "hairstyle": 5}),
        ("lfw", "a", "1", 1, {}),
        ("utkface", "x", "0", 2, {"ethnicity": 3}),
    ]:
        frames = []
        for k in range(n):
            frames.append(
                write_image(
                    tmp_path / source / subject / sequence / f"{k}.png",
                    solid(32, 32, next(colours)),
                )
            )
        out.append(Tracklet(subject, sequence, tuple(frames), labels=labels, source=source))
    return out


def test_pack_round_trip_raw_is_memmapped_and_ordered(tracklets, tmp_path):
    out = pack_tracklets(
        tracklets,
        tmp_path / "faces.npz",
        size=8,
        label_names=("id", "gender", "ethnicity", "hairstyle"),
    )
    pack = PackedFaces.open(out)
    assert isinstance(pack._images, np.memmap)
    assert len(pack) == 6 and pack.images.shape == (6, 8, 8, 3)
    # Source order of first appearance, then subjects and sequences in natural order.
    assert pack.subject_names == ["lfw/a", "lfw/b", "utkface/x"]
    assert pack.sequence_names == ["1", "1", "2", "0"]
    assert pack.subject.tolist() == [0, 1, 1, 1, 2, 2]
    assert pack.sequence.tolist() == [0, 1, 1, 2, 3, 3] and pack.frame.tolist() == [
        0,
        0,
        1,
        0,
        0,
        1,
    ]
    assert pack.sequence_start.tolist() == [0, 1, 3, 4, 6]
    assert pack.labels[:, 0].tolist() == pack.subject.tolist()  # "id" column = subject index
    assert pack.labels[1].tolist() == [1, 1, -1, 5] and pack.labels[0].tolist() == [0, -1, -1, -1]
    assert pack.labels[4].tolist() == [2, -1, 3, -1]
    assert pack.images[1, 0, 0].tolist() == [10, 200, 10]  # b/1 frame 0 = second colour
    assert pack.paths()[1] == "b/1/0.png"
    meta = pack.meta
    assert [s["key"] for s in meta["sources"]] == ["lfw", "utkface"] and "licence" in meta[
        "sources"
    ][0]
    assert pack.summary["subjects"] == 3 and pack.summary["frames"] == 6
    assert pack.summary["labels"]["gender"]["classes"] == {"female": {"sequences": 2, "frames": 3}}
    # A plain numpy.load reads the same file.
    with np.load(out) as npz:
        assert np.array_equal(npz["images"], pack.images) and np.array_equal(
            npz["labels"], pack.labels
        )


@pytest.mark.parametrize(("codec", "tolerance"), [("png", 0), ("jpeg", 12), ("webp", 12)])
def test_encoded_codecs_round_trip(tracklets, tmp_path, codec, tolerance):
    raw = PackedFaces.open(pack_tracklets(tracklets, tmp_path / "raw.npz", size=16))
    enc = PackedFaces.open(
        pack_tracklets(tracklets, tmp_path / f"{codec}.npz", size=16, codec=codec, quality=90)
    )
    assert enc.meta["codec"] == codec
    diff = np.abs(enc.images.astype(int) - raw.images.astype(int)).max()
    assert diff <= tolerance
    assert np.array_equal(enc.image(3), enc.images[3])


def test_pack_crops_with_region_boxes_and_rules(tmp_path):
    image = np.zeros((100, 60, 3), np.uint8)
    image[0:20, 20:40] = (255, 255, 255)  # a white "head" at the top of the person box
    path = write_image(tmp_path / "frame.png", image)
    person = Tracklet(
        "p", "s", (path,), crop=HeadTop(height_fraction=0.2), boxes=(Box(0, 0, 60, 100),)
    )
    rel = Tracklet("q", "s", (path,), crop=RelativeBox(20 / 60, 0, 20 / 60, 0.2))
    pack = PackedFaces.open(
        pack_tracklets([person, rel], tmp_path / "p.npz", size=10, label_names=("id",))
    )
    assert (pack.images == 255).all()


def test_unreadable_frames_below_the_limit_are_skipped_and_recorded(tmp_path):
    frames = [write_image(tmp_path / f"{i}.png", noise_image(16, 16, i)) for i in range(10)]
    frames[3].write_bytes(b"\xff\xd8\xffcorrupt")
    tracklet = Tracklet("p", "s", tuple(frames))
    lone = Tracklet("p", "t", (frames[3],))  # a sequence that loses its only frame is dropped
    out = pack_tracklets(
        [tracklet, lone],
        tmp_path / "p.npz",
        size=8,
        label_names=("id",),
        max_unreadable_fraction=0.2,
    )
    pack = PackedFaces.open(out)
    assert len(pack) == 9 and pack.meta["unreadable"]["count"] == 2
    assert "3.png" in pack.meta["unreadable"]["examples"][0]
    assert pack.meta["dropped_sequences"] == 1 and pack.sequence_names == ["s"]
    assert pack.frame.tolist() == list(range(9))


def test_too_many_unreadable_frames_raise_and_write_nothing(tmp_path):
    frames = [write_image(tmp_path / f"{i}.png", noise_image(16, 16, i)) for i in range(3)]
    frames[1].unlink()
    with pytest.raises(TooManyUnreadableError, match="1 of 3 frames") as info:
        pack_tracklets(
            [Tracklet("p", "s", tuple(frames))], tmp_path / "p.npz", size=8, label_names=("id",)
        )
    assert info.value.count == 1 and "not found" in info.value.examples[0]
    assert not list(tmp_path.glob("p.npz*"))


def test_box_outside_the_frame_counts_as_unreadable(tmp_path):
    path = write_image(tmp_path / "f.png", noise_image(16, 16, 0))
    t = Tracklet("p", "s", (path,), boxes=(Box(40, 40, 5, 5),))
    with pytest.raises(TooManyUnreadableError, match="outside"):
        pack_tracklets([t], tmp_path / "p.npz", size=8, label_names=("id",))


def test_pack_argument_errors(tracklets, tmp_path):
    with pytest.raises(DatasetError, match="appears twice"):
        pack_tracklets([tracklets[0], tracklets[0]], tmp_path / "p.npz")
    for kwargs in ({"size": 4}, {"codec": "gif"}, {"label_names": ("shoe",)}, {"quality": 0}):
        with pytest.raises(ValueError):
            pack_tracklets(tracklets, tmp_path / "p.npz", **kwargs)
    with pytest.raises(ValueError, match="no tracklets"):
        pack_tracklets([], tmp_path / "p.npz")


def test_open_rejects_what_is_not_a_pack(tracklets, tmp_path):
    with pytest.raises(PackFormatError, match="not found"):
        PackedFaces.open(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(PackFormatError, match="not a pack"):
        PackedFaces.open(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(PackFormatError, match=r"no meta\.json"):
        PackedFaces.open(tmp_path / "other.npz")
    good = pack_tracklets(tracklets, tmp_path / "good.npz", size=8)
    with zipfile.ZipFile(good) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    meta = json.loads(members["meta.json"])
    for change, match in (
        ({"version": 99}, "version 99"),
        ({"format": "x"}, "format 'x'"),
        ({"size": 9}, "images shape"),
    ):
        with zipfile.ZipFile(tmp_path / "bad.npz", "w") as zout:
            for name, data in members.items():
                zout.writestr(name, json.dumps({**meta, **change}) if name == "meta.json" else data)
        with pytest.raises(PackFormatError, match=match):
            PackedFaces.open(tmp_path / "bad.npz")
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as zout:
        for name, data in members.items():
            if name != "labels.npy":
                zout.writestr(name, data)
    with pytest.raises(PackFormatError, match=r"missing member labels\.npy"):
        PackedFaces.open(tmp_path / "bad.npz")


def test_deflated_pack_still_opens_without_memmap(tracklets, tmp_path):
    good = pack_tracklets(tracklets, tmp_path / "good.npz", size=8)
    with (
        zipfile.ZipFile(good) as zin,
        zipfile.ZipFile(tmp_path / "z.npz", "w", zipfile.ZIP_DEFLATED) as zout,
    ):
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
    pack = PackedFaces.open(tmp_path / "z.npz")
    assert not isinstance(pack._images, np.memmap)
    assert np.array_equal(pack.images, PackedFaces.open(good).images)


def test_pickled_pack_reopens_its_file(tracklets, tmp_path):
    pack = PackedFaces.open(pack_tracklets(tracklets, tmp_path / "p.npz", size=8))
    data = pickle.dumps(pack)
    assert len(data) < 1000  # the path, not the images
    clone = pickle.loads(data)
    assert np.array_equal(clone.images, pack.images) and clone.subject_names == pack.subject_names


def test_split_subjects_is_per_source_disjoint_and_reproducible(tracklets, tmp_path):
    pack = PackedFaces.open(pack_tracklets(tracklets, tmp_path / "p.npz", size=8))
    train, held = pack.split_subjects(0.5, seed=3)
    assert sorted([*train, *held]) == [0, 1, 2] and not set(train) & set(held)
    assert len(held) == 1  # round(2 * 0.5) = 1 of lfw + round(1 * 0.5) = 0 of utkface
    assert pack.subject_names[held[0]].startswith("lfw/")
    again = pack.split_subjects(0.5, seed=3)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], held)
    with pytest.raises(ValueError):
        pack.split_subjects(1.0)


def test_from_arrays_checks_order():
    images = np.zeros((3, 8, 8, 3), np.uint8)
    pack = PackedFaces.from_arrays(
        images, subject=[0, 0, 1], sequence=[0, 0, 1], labels=[[0], [0], [1]], label_names=("id",)
    )
    assert pack.frame.tolist() == [0, 1, 0] and pack.sequence_start.tolist() == [0, 2, 3]
    with pytest.raises(ValueError, match="contiguous"):
        PackedFaces.from_arrays(
            images,
            subject=[0, 1, 0],
            sequence=[0, 1, 0],
            labels=[[0], [1], [0]],
            label_names=("id",),
        )


def test_cli_packs_a_tracklet_folder(tmp_path, capsys):
    from models.data.pack import main
    from models.data.synthetic import make_synthetic_tracklets

    folder = make_synthetic_tracklets(tmp_path / "s", n_subjects=2, sequences=2, frames=2, size=32)
    out = tmp_path / "cli.npz"
    root = str(folder.tracklets_root)
    args = ["--out", str(out), "--size", "16", "--codec", "png", "--folder", root]
    assert main([*args, "--folder-labels", str(folder.labels_csv)]) == 0
    pack = PackedFaces.open(out)
    assert len(pack) == 8 and pack.meta["codec"] == "png" and (pack.labels[:, 1] >= 0).all()
    assert "8 frames, codec png" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--out", str(out)])  # no dataset given
