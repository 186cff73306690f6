"""The face sidecar: every frame's boxes and methods, recorded during a real reconstruction,
complete past the report's per-face cap; sealed faces named with their codec; a damaged or
unfinished file refused."""

from __future__ import annotations

import gzip
import stat

import numpy as np
import pytest

from authority_service.decoders import DecoderRegistry
from authority_service.errors import ForgedMessageError
from authority_service.face_sidecar import FaceSidecarError, FaceSidecarWriter, read_face_sidecar
from authority_service.reconstruction import LsbMessageSource, Reconstructor
from authority_service.sealed import MAX_FACE_ENTRIES, FrameFaces
from shared.geometry import Box
from tests.authority_service.conftest import CAMERA_ID, CAMERA_KEY
from tests.authority_service.edge_role import deidentify_clip, synthetic_frames
from tests.toy_models import TOY_MODEL_ID

# 40 faces a frame but one, 27 frames: 1,040 faces, past the report's list of 1,000.
GRID = [Box(4 + 39 * c, 4 + 46 * r, 32, 32) for r in range(5) for c in range(8)]
FRAMES = 27


@pytest.fixture(scope="module")
def reconstructor(models_dir) -> Reconstructor:
    registry = DecoderRegistry(models_dir, None, providers="cpu", threads=1)
    return Reconstructor(registry, LsbMessageSource({CAMERA_ID: CAMERA_KEY}), max_batch=64)


@pytest.fixture(scope="module")
def crowded_clip(models_dir, tmp_path_factory):
    """Frame 3 carries no face; the others 40."""
    return deidentify_clip(
        synthetic_frames(FRAMES),
        lambda i, f: [] if i == 3 else GRID,
        models_dir / TOY_MODEL_ID,
        tmp_path_factory.mktemp("crowd") / "crowd.mkv",
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )


def test_sidecar_lists_every_face_of_a_clip_the_report_caps(reconstructor, crowded_clip, tmp_path):
    path = tmp_path / "job.faces.jsonl.gz"
    with FaceSidecarWriter(path) as sidecar:
        report = reconstructor.reconstruct_clip(
            crowded_clip, tmp_path / "out.mkv", on_frame=sidecar.add
        )
    methods = report.faces_by_method
    assert report.faces == 40 * (FRAMES - 1) > MAX_FACE_ENTRIES
    assert len(methods.faces) == MAX_FACE_ENTRIES and methods.faces_omitted == 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    read = read_face_sidecar(path)
    assert [f.index for f in read.frames] == list(range(FRAMES))
    assert read.boxes == report.faces and read.boxes_omitted == 0
    for frame in read.frames:
        assert frame.message is True  # frame 3's message lists no box
        expected = [] if frame.index == 3 else [(b.x, b.y, b.w, b.h) for b in GRID]
        assert [entry[:4] for entry in frame.boxes] == expected
        assert all(entry[4:] == ("ud", "no_payload") for entry in frame.boxes)
    # The sidecar agrees with the report's own list where the report has one.
    listed = [(f.index, i) for f in read.frames for i in range(len(f.boxes))]
    assert listed[:MAX_FACE_ENTRIES] == [(e["frame"], e["box"]) for e in methods.faces]


def test_sealed_faces_and_frames_without_message_are_recorded_as_such(tmp_path):
    path = tmp_path / "faces.jsonl.gz"
    boxes = [Box(0, 0, 16, 16), Box(20, 0, 16, 16), Box(40, 0, 16, 16)]
    opened = FrameFaces(
        exact={0: np.zeros((16, 16, 3), np.uint8)}, codecs={0: "png"}, ud={1: "not_in_payload"}
    )
    with FaceSidecarWriter(path) as sidecar:
        sidecar.add(0, boxes, opened)
        sidecar.add(1, None, FrameFaces())
    first, second = read_face_sidecar(path).frames
    assert first.boxes == (
        (0, 0, 16, 16, "sealed", "png"),
        (20, 0, 16, 16, "ud", "not_in_payload"),
        (40, 0, 16, 16, "ud", "no_payload"),
    )
    assert (second.message, second.boxes) == (False, ())


def test_a_failed_reconstruction_leaves_no_sidecar(reconstructor, models_dir, tmp_path):
    clip = deidentify_clip(
        synthetic_frames(2),
        lambda i, f: GRID[:1],
        models_dir / TOY_MODEL_ID,
        tmp_path / "other-camera.mkv",
        camera_id=CAMERA_ID,
        key=b"not-the-key-the-authority-holds-00",
    )
    path = tmp_path / "faces.jsonl.gz"
    with pytest.raises(ForgedMessageError), FaceSidecarWriter(path) as sidecar:
        reconstructor.reconstruct_clip(clip, tmp_path / "out.mkv", on_frame=sidecar.add)
    assert not path.exists()


def test_unfinished_or_foreign_files_are_refused(tmp_path):
    unfinished = tmp_path / "unfinished.gz"
    sidecar = FaceSidecarWriter(unfinished)
    sidecar.add(0, [Box(0, 0, 4, 4)], FrameFaces())
    sidecar._gzip.close()  # a crash before the trailer
    sidecar._raw.close()
    foreign = tmp_path / "foreign.gz"
    with gzip.open(foreign, "wt") as handle:
        handle.write('{"format": "something-else"}\n')
    for path in (unfinished, foreign, tmp_path / "missing.gz"):
        with pytest.raises(FaceSidecarError):
            read_face_sidecar(path)
