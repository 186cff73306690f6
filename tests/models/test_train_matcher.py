"""models.train_matcher: pair targets, pair sampling, AUC, and a matcher that learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.train_matcher import (
    PairSampler,
    augment_pair,
    build_matcher,
    evaluate_matcher,
    matcher_step,
    pair_targets,
    roc_auc,
    to_tensor,
)
from tests.models.tiny import LABELS, tiny_matcher_config, tiny_pack


def test_pair_targets_compare_labels_and_mask_unknown():
    labels = np.array([[0, 1, -1, 2], [1, 1, 3, -1], [0, 0, 3, 2]])
    subject = np.array([0, 1, 0])
    target, mask = pair_targets(labels, subject, np.array([0, 0]), np.array([1, 2]), LABELS)
    # id column compares subjects; others compare labels; -1 on either side is masked.
    np.testing.assert_array_equal(target[:, 0], [0, 1])
    np.testing.assert_array_equal(target[:, 1], [1, 0])
    np.testing.assert_array_equal(mask, [[1, 1, 0, 0], [1, 1, 0, 1]])


def test_pair_sampler_positive_share_and_same_group_negatives():
    subject = np.repeat(np.arange(20), 3)
    group = (np.arange(60) >= 30).astype(np.int64)
    sampler = PairSampler(subject, np.arange(60), 0.5, seed=0, group=group)
    first, second = sampler.draw(200)
    assert np.all(subject[first[:100]] == subject[second[:100]])
    assert np.all(first[:100] != second[:100])
    assert np.all(group[first[100:]] == group[second[100:]])


def test_pair_sampler_needs_two_items():
    with pytest.raises(ValueError):
        PairSampler(np.array([0]), np.array([0]), 0.5, seed=0)


@pytest.mark.parametrize(
    ("scores", "positives", "expected"),
    [
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),
        ([1, 2, 3, 4], [0, 0, 1, 1], 1.0),
        ([1, 1, 1, 1], [0, 1, 0, 1], 0.5),
    ],
)
def test_roc_auc_known_values(scores, positives, expected):
    assert roc_auc(np.array(scores), np.array(positives, bool)) == pytest.approx(expected)


def test_roc_auc_single_class_is_nan():
    assert np.isnan(roc_auc(np.array([1.0, 2.0]), np.array([True, True])))


def test_matcher_learns_gender_agreement_on_synthetic_faces():
    torch.manual_seed(0)
    config = tiny_matcher_config(input_size=16)
    pack = tiny_pack(config)
    from models.face_source import face_arrays

    faces = face_arrays(pack, LABELS)
    matcher = build_matcher(LABELS, 16)
    optimiser = torch.optim.Adam(matcher.parameters(), lr=3e-3)
    sampler = PairSampler(faces.subject, np.arange(len(faces.subject)), 0.5, seed=0)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        first, second = sampler.draw(32)
        target, mask = pair_targets(faces.labels, faces.subject, first, second, LABELS)
        a, b = augment_pair(
            to_tensor(faces.images[first]), to_tensor(faces.images[second]), generator
        )
        losses.append(
            matcher_step(matcher, optimiser, a, b, torch.from_numpy(target), torch.from_numpy(mask))
        )
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    aucs = evaluate_matcher(
        matcher, faces, np.arange(len(faces.subject)), 400, 1, torch.device("cpu")
    )
    assert aucs["auc_gender"] > 0.7
