"""models.data.dataset.FaceSequenceDataset: items, label order, subject filter, jitter keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.data.dataset import FaceSequenceDataset, FrameKey
from models.data.jitter import VideoJitter
from models.data.synthetic import make_synthetic_faces


@pytest.fixture(scope="module")
def pack():
    return make_synthetic_faces(4, sequences=2, frames=3, size=32, seed=2)


def test_item_types_shapes_and_ranges(pack):
    ds = FaceSequenceDataset(pack)
    image, labels, subject, sequence = ds[5]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert labels.dtype == torch.int64 and labels.tolist() == pack.labels[5].tolist()
    assert (subject, sequence) == (int(pack.subject[5]), int(pack.sequence[5]))
    assert torch.equal(image, torch.from_numpy(pack.image(5).transpose(2, 0, 1)).float() / 255)


def test_label_subset_order_and_unknown_label(pack):
    ds = FaceSequenceDataset(pack, label_names=("hairstyle", "id"))
    _, labels, subject, _ = ds[0]
    assert labels.tolist() == [int(pack.labels[0, 3]), subject]
    with pytest.raises(ValueError, match="not in the pack"):
        FaceSequenceDataset(pack, label_names=("shoe",))


def test_subject_filter_keeps_only_those_subjects(pack):
    ds = FaceSequenceDataset(pack, subjects=[1, 3])
    assert len(ds) == 12 and {ds[i][2] for i in range(len(ds))} == {1, 3}
    subject, start, stop = ds.sequences()
    assert subject.tolist() == [1, 1, 3, 3] and (stop - start).tolist() == [3, 3, 3, 3]
    with pytest.raises(ValueError):
        FaceSequenceDataset(pack, subjects=[9])


def test_frame_keys_jitter_only_with_a_motion_seed_and_a_jitter(pack):
    plain = FaceSequenceDataset(pack)
    jittered = FaceSequenceDataset(pack, jitter=VideoJitter())
    base = plain[2][0]
    assert torch.equal(jittered[FrameKey(2, 1, 4, -1)][0], base)
    assert torch.equal(plain[FrameKey(2, 1, 4, 99)][0], base)
    moved = jittered[FrameKey(2, 1, 4, 99)][0]
    assert not torch.equal(moved, base) and float((moved - base).abs().mean()) < 0.1
    assert torch.equal(jittered[(2, 1, 4, 99)][0], moved)
    assert np.array_equal(jittered.raw_image(2), pack.image(2))
