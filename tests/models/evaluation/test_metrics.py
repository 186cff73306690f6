import itertools

import numpy as np
import pytest

from models.evaluation.errors import EvaluationError
from models.evaluation.metrics import (
    average_precision,
    decidability,
    flicker,
    genuine_impostor_scores,
    high_frequency_energy,
    high_frequency_ratio,
    l2_residual,
    match_detections,
    psnr,
    roc_auc,
    roc_curve,
    ssim,
)
from shared.geometry import Box


def _brute_auc(genuine, impostor):
    wins = [
        1.0 if g > i else 0.5 if g == i else 0.0 for g, i in itertools.product(genuine, impostor)
    ]
    return float(np.mean(wins))


def test_roc_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(1)
    genuine = rng.integers(0, 10, 40).astype(float)
    impostor = rng.integers(0, 8, 55).astype(float)
    assert roc_auc(genuine, impostor) == pytest.approx(_brute_auc(genuine, impostor))


def test_roc_auc_separated_sets_one_and_reversed_zero():
    assert roc_auc([0.9, 0.8], [0.1, 0.2, 0.3]) == 1.0
    assert roc_auc([0.1, 0.2], [0.8, 0.9]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5]) == 0.5


def test_roc_auc_empty_set_raises():
    with pytest.raises(EvaluationError, match="genuine"):
        roc_auc([], [0.1])


def test_roc_curve_area_equals_auc():
    rng = np.random.default_rng(2)
    genuine, impostor = rng.normal(1, 1, 300), rng.normal(0, 1, 400)
    fmr, tmr = roc_curve(genuine, impostor)
    assert (
        fmr[0] == 0 and tmr[0] == 0 and fmr[-1] == pytest.approx(1) and tmr[-1] == pytest.approx(1)
    )
    assert np.trapezoid(tmr, fmr) == pytest.approx(roc_auc(genuine, impostor), abs=1e-9)


def test_decidability_known_value_and_sign():
    genuine = np.array([1.0, 3.0])  # mean 2, var 1
    impostor = np.array([-1.0, 1.0])  # mean 0, var 1
    assert decidability(genuine, impostor) == pytest.approx(2.0)
    assert decidability(impostor, genuine) == pytest.approx(-2.0)


def test_decidability_without_spread_raises():
    with pytest.raises(EvaluationError, match="spread"):
        decidability([1.0, 1.0], [0.0, 0.0])


def test_genuine_impostor_scores_self_comparison_counts_each_pair_once():
    emb = np.eye(4, dtype=np.float32)
    sets = genuine_impostor_scores(emb, ["a", "a", "b", "b"])
    assert sets.genuine.size == 2 and sets.impostor.size == 4


def test_genuine_impostor_scores_same_index_modes():
    emb = np.eye(4, dtype=np.float32)
    labels = ["a", "a", "b", "b"]
    exclude = genuine_impostor_scores(emb, labels, emb, labels)
    only = genuine_impostor_scores(emb, labels, emb, labels, same_index="only")
    include = genuine_impostor_scores(emb, labels, emb, labels, same_index="include")
    assert exclude.genuine.size == 4 and np.all(exclude.genuine == 0)
    assert only.genuine.size == 4 and np.all(only.genuine == 1)
    assert include.genuine.size == 8
    assert exclude.impostor.size == only.impostor.size == include.impostor.size == 8


def test_genuine_impostor_scores_single_identity_raises():
    with pytest.raises(EvaluationError, match="impostor"):
        genuine_impostor_scores(np.eye(3, dtype=np.float32), ["a", "a", "a"])


def test_genuine_impostor_scores_caps_impostors():
    emb = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    sets = genuine_impostor_scores(emb, [i % 3 for i in range(30)], max_impostors=50)
    assert sets.impostor.size == 50


def test_psnr_known_value_and_identity():
    x = np.zeros((8, 8, 3), np.uint8)
    y = x.copy()
    assert psnr(x, y) == float("inf")
    y[:] = 10
    assert psnr(x, y) == pytest.approx(20 * np.log10(255 / 10))


def test_psnr_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_ssim_identical_is_one_and_noise_lowers_it():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    noisy = np.clip(x + rng.normal(0, 40, x.shape), 0, 255).astype(np.uint8)
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, noisy) < 0.9
    assert ssim(x, noisy) < ssim(x, np.clip(x.astype(int) + 3, 0, 255).astype(np.uint8))


def test_ssim_tiny_images_use_smaller_window():
    x = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
    assert ssim(x, x) == pytest.approx(1.0)


def test_l2_residual_is_mean_pixel_euclidean_norm():
    x = np.zeros((2, 2, 3), np.uint8)
    y = x.copy()
    y[0, 0] = (3, 4, 0)
    assert l2_residual(x, y) == pytest.approx(5 / 4)


def test_flicker_mean_consecutive_change():
    patches = [np.full((4, 4, 3), v, np.uint8) for v in (0, 10, 10, 40)]
    assert flicker(patches) == pytest.approx((10 + 0 + 30) / 3)
    with pytest.raises(ValueError, match="two"):
        flicker(patches[:1])


def test_average_precision_perfect_and_half():
    truths = [Box(0, 0, 10, 10), Box(20, 0, 10, 10)]
    perfect = match_detections([(Box(0, 0, 10, 10), 0.9), (Box(20, 0, 10, 10), 0.8)], truths)
    assert average_precision(perfect, 2) == pytest.approx(1.0)
    one = match_detections([(Box(0, 0, 10, 10), 0.9), (Box(50, 50, 5, 5), 0.95)], truths)
    assert average_precision(one, 2) == pytest.approx(0.25)
    assert average_precision([], 2) == 0.0


def test_match_detections_counts_duplicates_as_false_positives():
    truths = [Box(0, 0, 10, 10)]
    result = match_detections([(Box(0, 0, 10, 10), 0.9), (Box(1, 0, 10, 10), 0.8)], truths)
    assert result == [(0.9, True), (0.8, False)]


def test_high_frequency_energy_is_the_training_losss_twin():
    torch = pytest.importorskip("torch")
    from models.losses import high_frequency_energy as torch_energy

    images = np.random.default_rng(4).random((3, 3, 20, 24)).astype(np.float32)
    expected = torch_energy(torch.from_numpy(images)).double().numpy()
    np.testing.assert_allclose(high_frequency_energy(images), expected, atol=1e-5, rtol=1e-5)


def test_high_frequency_energy_of_a_flat_and_a_checkered_image():
    flat = np.full((1, 3, 8, 8), 0.4)
    assert high_frequency_energy(flat) == pytest.approx(np.zeros((1, 3)))
    checker = np.indices((8, 8)).sum(axis=0) % 2 * np.ones((1, 3, 1, 1))  # grey checkerboard
    energy = high_frequency_energy(checker)[0]
    assert energy[0] == pytest.approx(16.0)  # |Laplacian| = 4 on a 0/1 checkerboard of luma 1
    assert energy[1:] == pytest.approx([0.0, 0.0], abs=1e-12)  # grey: no chroma
    with pytest.raises(ValueError, match="N x 3"):
        high_frequency_energy(np.zeros((3, 8, 8)))


def test_high_frequency_ratio_sees_chroma_speckle():
    rng = np.random.default_rng(5)
    grey = rng.integers(100, 140, (3, 32, 32, 1))
    tint = rng.integers(0, 3, (3, 32, 32, 3))  # a little chroma texture, as real skin has
    faces = [(g + t).astype(np.uint8) for g, t in zip(grey, tint, strict=True)]
    assert high_frequency_ratio(faces, faces) == {"luma": 1.0, "chroma": 1.0, "images": 3}
    speckled = []
    for face in faces:
        swing = rng.integers(-30, 31, face.shape[:2])
        noisy = face.astype(int)
        noisy[..., 0] += swing  # red up where blue goes down: chroma, little luma
        noisy[..., 2] -= swing
        speckled.append(np.clip(noisy, 0, 255).astype(np.uint8))
    ratio = high_frequency_ratio(faces, speckled)
    assert ratio["chroma"] > 10 * ratio["luma"] and ratio["luma"] < 2
    with pytest.raises(EvaluationError, match="no high-frequency"):
        high_frequency_ratio([np.zeros((8, 8, 3), np.uint8)], [np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(ValueError, match="pairs"):
        high_frequency_ratio([], [])
