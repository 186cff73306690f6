"""models.data.sampler.PJKBatchSampler: P x J x K structure, policies, determinism, DDP shards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from models.data.dataset import FaceSequenceDataset
from models.data.jitter import VideoJitter
from models.data.pack import PackedFaces
from models.data.sampler import PJKBatchSampler, same_subject_and_sequence


def toy_pack(seqs_per_subject, frames_per_sequence):
    """Tiny in-memory pack; image pixel value encodes the row, for checking."""
    subject, sequence, q = [], [], 0
    for s, n_seq in enumerate(seqs_per_subject):
        for _ in range(n_seq):
            n = frames_per_sequence(s, q)
            subject += [s] * n
            sequence += [q] * n
            q += 1
    n = len(subject)
    images = (
        np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    ).astype(np.uint8)
    labels = np.asarray(subject)[:, None]
    return PackedFaces.from_arrays(
        images, subject=subject, sequence=sequence, labels=labels, label_names=("id",)
    )


def check_structure(ds, batch, P, J, K, distinct_sequences=True):  # noqa: N803
    assert len(batch) == P * J * K
    subject = np.array([int(ds.pack.subject[ds.rows[k.index]]) for k in batch]).reshape(P, J, K)
    sequence = np.array([int(ds.pack.sequence[ds.rows[k.index]]) for k in batch]).reshape(P, J, K)
    assert (subject == subject[:, :1, :1]).all()  # subject-major blocks
    assert len(set(subject[:, 0, 0])) == P  # P different subjects
    assert (sequence == sequence[:, :, :1]).all()  # K frames of one sequence per slot
    if distinct_sequences:
        assert all(len(set(sequence[p, :, 0])) == J for p in range(P))
    for p in range(P):  # frames in temporal order within a slot
        for j in range(J):
            idx = [batch[(p * J + j) * K + k].index for k in range(K)]
            assert idx == sorted(idx)
    return subject, sequence


def test_batches_have_pjk_structure_with_distinct_frames():
    ds = FaceSequenceDataset(toy_pack([3] * 6, lambda s, q: 5))
    sampler = PJKBatchSampler(ds, P=3, J=2, K=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2
    for batch in batches:
        check_structure(ds, batch, 3, 2, 4)
        assert len({k.index for k in batch}) == len(batch)  # 5 >= K frames: no repeats
        assert all(k.motion_seed == -1 for k in batch)
    # Each epoch uses each subject at most once.
    firsts = [ds.pack.subject[b[i * 8].index] for b in batches for i in range(3)]
    assert len(set(firsts)) == 6


def test_same_seed_and_epoch_give_the_same_batches():
    ds = FaceSequenceDataset(toy_pack([3] * 6, lambda s, q: 5))
    a, b = PJKBatchSampler(ds, 2, 2, 2, seed=5), PJKBatchSampler(ds, 2, 2, 2, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert list(PJKBatchSampler(ds, 2, 2, 2, seed=6)) != first


def test_subject_policy_skip_excludes_subjects_with_too_few_sequences():
    ds = FaceSequenceDataset(toy_pack([1, 2, 3, 1, 2], lambda s, q: 2))
    sampler = PJKBatchSampler(ds, P=2, J=2, K=2, seed=0, batches_per_epoch=10)
    assert sampler.eligible_subjects == 3
    for batch in sampler:
        subject, _ = check_structure(ds, batch, 2, 2, 2)
        assert set(subject.ravel()) <= {1, 2, 4}
    with pytest.raises(ValueError, match="only 3 subjects"):
        PJKBatchSampler(ds, P=4, J=2, K=2)


def test_subject_policy_repeat_reuses_sequences_with_different_motion():
    ds = FaceSequenceDataset(toy_pack([1, 1, 1], lambda s, q: 1), jitter=VideoJitter())
    sampler = PJKBatchSampler(ds, P=3, J=2, K=3, seed=0, subject_policy="repeat")
    batch = next(iter(sampler))
    _, sequence = check_structure(ds, batch, 3, 2, 3, distinct_sequences=False)
    assert (sequence[:, 0, 0] == sequence[:, 1, 0]).all()  # the one sequence twice
    seeds = {(p, j): batch[(p * 2 + j) * 3].motion_seed for p in range(3) for j in range(2)}
    assert all(seed >= 0 for seed in seeds.values()) and seeds[(0, 0)] != seeds[(0, 1)]
    images = torch.stack([ds[k][0] for k in batch[:3]])
    assert not torch.equal(images[0], images[1])  # K jittered views of one photo


def test_frame_policy_repeat_spreads_frames_and_marks_motion():
    ds = FaceSequenceDataset(toy_pack([2, 2], lambda s, q: 2))
    batch = next(iter(PJKBatchSampler(ds, P=2, J=2, K=4, seed=0)))
    start = batch[0].index
    assert [k.index - start for k in batch[:4]] == [0, 0, 1, 1]
    assert [k.view for k in batch[:4]] == [0, 1, 2, 3] and len(
        {k.motion_seed for k in batch[:4]}
    ) == 1
    with pytest.raises(ValueError, match="only 0 subjects"):
        PJKBatchSampler(ds, P=2, J=2, K=4, frame_policy="skip")


def test_frame_policy_skip_uses_only_long_sequences():
    # Subject s has sequences of length 1 and 4: with skip and J=1, only the long one is drawn.
    ds = FaceSequenceDataset(toy_pack([2, 2, 2], lambda s, q: 1 if q % 2 == 0 else 4))
    sampler = PJKBatchSampler(ds, P=3, J=1, K=3, frame_policy="skip", batches_per_epoch=5)
    for batch in sampler:
        _, sequence = check_structure(ds, batch, 3, 1, 3)
        assert all(q % 2 == 1 for q in sequence.ravel())


def test_ddp_ranks_get_disjoint_equal_shards_of_the_same_sequence():
    ds = FaceSequenceDataset(toy_pack([2] * 12, lambda s, q: 3))
    single = list(PJKBatchSampler(ds, 2, 2, 2, seed=9, batches_per_epoch=6))
    r0 = list(PJKBatchSampler(ds, 2, 2, 2, seed=9, batches_per_epoch=3, num_replicas=2, rank=0))
    r1 = list(PJKBatchSampler(ds, 2, 2, 2, seed=9, batches_per_epoch=3, num_replicas=2, rank=1))
    assert r0 == single[0::2] and r1 == single[1::2] and len(r0) == len(r1) == 3
    with pytest.raises(ValueError):
        PJKBatchSampler(ds, 2, 2, 2, num_replicas=2, rank=2)


def test_dataloader_batches_and_pair_masks():
    ds = FaceSequenceDataset(toy_pack([3] * 4, lambda s, q: 4))
    loader = DataLoader(ds, batch_sampler=PJKBatchSampler(ds, P=2, J=2, K=3, seed=0))
    images, labels, subject, sequence = next(iter(loader))
    assert images.shape == (12, 3, 4, 4) and labels.shape == (12, 1)
    assert subject.view(2, 2, 3)[:, :, 0].unique(dim=1).shape[1] == 1
    same_subject, same_sequence = same_subject_and_sequence(subject, sequence)
    assert same_subject.shape == (12, 12) and same_subject[0, 5] and not same_subject[0, 6]
    assert same_sequence[0, 2] and not same_sequence[0, 3]
    assert (same_sequence <= same_subject).all()


def test_bad_sampler_arguments():
    ds = FaceSequenceDataset(toy_pack([2] * 3, lambda s, q: 2))
    for kwargs in ({"P": 0, "J": 1, "K": 1}, {"P": 1, "J": 1, "K": 1, "subject_policy": "drop"}):
        with pytest.raises(ValueError):
            PJKBatchSampler(ds, **kwargs)
