"""Figures of merit: verification (ROC AUC, decidability d'), image fidelity (PSNR, SSIM, the
paper's L2 residual), temporal flicker, high-frequency energy (luma, chroma), and detection
average precision.

Conventions: similarity scores are "higher = more alike" (cosine of L2-normalised embeddings);
images are ``uint8`` (0-255) or float arrays on the same scale; nothing here needs torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.evaluation.errors import EvaluationError
from shared.geometry import Box, iou

__all__ = [
    "ScoreSets",
    "average_precision",
    "decidability",
    "flicker",
    "genuine_impostor_scores",
    "high_frequency_energy",
    "high_frequency_ratio",
    "l2_residual",
    "match_detections",
    "psnr",
    "roc_auc",
    "roc_curve",
    "ssim",
    "summarise_scores",
]


@dataclass(frozen=True)
class ScoreSets:
    """Similarity scores of genuine (same identity) and impostor (different identity) pairs."""

    genuine: np.ndarray
    impostor: np.ndarray


def _check_sets(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(genuine, dtype=np.float64).ravel()
    i = np.asarray(impostor, dtype=np.float64).ravel()
    if g.size == 0 or i.size == 0:
        raise EvaluationError(
            f"need genuine and impostor scores, got {g.size} genuine and {i.size} impostor"
        )
    if not (np.isfinite(g).all() and np.isfinite(i).all()):
        raise EvaluationError("scores contain NaN or infinity")
    return g, i


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a genuine score exceeds an impostor score
    (ties count one half; the Mann-Whitney statistic). 1.0: perfect separation; 0.5: chance.

    Raises:
        EvaluationError: an empty set or non-finite scores.
    """
    g, i = _check_sets(genuine, impostor)
    scores = np.concatenate([g, i])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    rank_sum = ranks[: g.size].sum()
    return float((rank_sum - g.size * (g.size + 1) / 2.0) / (g.size * i.size))


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False-match and true-match rates for every threshold (arrays from (0,0) to (1,1)).

    Raises:
        EvaluationError: an empty set or non-finite scores.
    """
    g, i = _check_sets(genuine, impostor)
    thresholds = np.unique(np.concatenate([g, i]))[::-1]
    g_sorted, i_sorted = np.sort(g), np.sort(i)
    tmr = 1.0 - np.searchsorted(g_sorted, thresholds, side="left") / g.size
    fmr = 1.0 - np.searchsorted(i_sorted, thresholds, side="left") / i.size
    return np.concatenate([[0.0], fmr]), np.concatenate([[0.0], tmr])


def decidability(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The paper's decidability (its eq. 14, Daugman's d'):
    ``(mean_G - mean_I) / sqrt((var_G + var_I) / 2)``. Signed: negative when genuine pairs score
    below impostors; 0 when the means agree.

    Raises:
        EvaluationError: an empty set, non-finite scores, or both sets without spread.
    """
    g, i = _check_sets(genuine, impostor)
    spread = np.sqrt((g.var() + i.var()) / 2.0)
    if spread == 0:
        raise EvaluationError("d' undefined: genuine and impostor scores have no spread")
    return float((g.mean() - i.mean()) / spread)


def summarise_scores(sets: ScoreSets) -> dict[str, float | int]:
    """AUC, d', means and counts of a genuine/impostor score pair, for reports.

    Raises:
        EvaluationError: see :func:`roc_auc` and :func:`decidability`.
    """
    return {
        "auc": roc_auc(sets.genuine, sets.impostor),
        "d_prime": decidability(sets.genuine, sets.impostor),
        "genuine_mean": float(np.mean(sets.genuine)),
        "impostor_mean": float(np.mean(sets.impostor)),
        "genuine_pairs": int(sets.genuine.size),
        "impostor_pairs": int(sets.impostor.size),
    }


def genuine_impostor_scores(
    probe: np.ndarray,
    probe_labels: Sequence[object],
    gallery: np.ndarray | None = None,
    gallery_labels: Sequence[object] | None = None,
    *,
    same_index: str = "exclude",
    max_impostors: int | None = None,
    seed: int = 0,
) -> ScoreSets:
    """Genuine and impostor cosine scores between two sets of L2-normalised embeddings.

    Row ``i`` of ``probe`` and row ``j`` of ``gallery`` form a genuine pair when their labels
    agree, an impostor pair otherwise. With no gallery the probe is compared with itself (each
    unordered pair once). When ``gallery`` holds transformed versions of the probe's images
    (``gallery[i]`` made from the image of ``probe[i]``), ``same_index`` chooses what to do with
    the pairs ``(i, i)``: ``"exclude"`` (the paper's x<->a': the second image is another image of
    the subject), ``"only"`` (genuine pairs are exactly ``(i, i)``), or ``"include"``.

    ``max_impostors`` keeps a random subset (fixed ``seed``) of the impostor pairs.

    Raises:
        EvaluationError: sizes and labels disagree, or no genuine or no impostor pair exists.
        ValueError: an unknown ``same_index``.
    """
    if same_index not in ("exclude", "only", "include"):
        raise ValueError(f"same_index must be exclude/only/include, got {same_index!r}")
    probe = np.asarray(probe, dtype=np.float32)
    labels_p = np.asarray([str(v) for v in probe_labels])
    if len(labels_p) != len(probe):
        raise EvaluationError(f"{len(probe)} probe embeddings but {len(labels_p)} labels")
    self_compare = gallery is None
    if self_compare:
        gallery, labels_g = probe, labels_p
    else:
        gallery = np.asarray(gallery, dtype=np.float32)
        labels_g = np.asarray([str(v) for v in (gallery_labels or [])])
        if len(labels_g) != len(gallery):
            raise EvaluationError(f"{len(gallery)} gallery embeddings but {len(labels_g)} labels")
    scores = probe @ gallery.T
    same = labels_p[:, None] == labels_g[None, :]
    valid = np.ones_like(same, dtype=bool)
    if self_compare:
        valid = np.triu(valid, k=1)
    elif len(probe) == len(gallery):
        diagonal = np.eye(len(probe), dtype=bool)
        if same_index == "exclude":
            valid &= ~diagonal
        elif same_index == "only":
            valid = diagonal | ~same
    genuine = scores[valid & same]
    impostor = scores[valid & ~same]
    if max_impostors is not None and impostor.size > max_impostors:
        rng = np.random.default_rng(seed)
        impostor = rng.choice(impostor, size=max_impostors, replace=False)
    if genuine.size == 0 or impostor.size == 0:
        raise EvaluationError(
            f"no {'genuine' if genuine.size == 0 else 'impostor'} pair among "
            f"{len(probe)} x {len(gallery)} faces of {len(set(labels_p))} identities"
        )
    return ScoreSets(genuine.astype(np.float64), impostor.astype(np.float64))


def _as_float(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if np.shape(a) != np.shape(b):
        raise ValueError(f"images differ in shape: {np.shape(a)} vs {np.shape(b)}")
    if np.size(a) == 0:
        raise ValueError("empty image")


def psnr(reference: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images).

    Raises:
        ValueError: shapes differ or the images are empty.
    """
    _check_pair(reference, test)
    mse = float(np.mean((_as_float(reference) - _as_float(test)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak**2 / mse))


def ssim(reference: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    """Structural similarity (Wang et al. 2004): 11x11 Gaussian window (sigma 1.5), K1 0.01,
    K2 0.03, computed per channel on the valid region and averaged (as scikit-image's
    ``structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)``).
    Images smaller than the window use a window of their size.

    Raises:
        ValueError: shapes differ or the images are empty.
    """
    _check_pair(reference, test)
    x, y = _as_float(reference), _as_float(test)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    side = min(11, x.shape[0], x.shape[1])
    side -= 1 - side % 2  # odd window
    sigma = 1.5 * side / 11.0
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    kernel = cv2.getGaussianKernel(side, sigma)
    window = kernel @ kernel.T
    half = side // 2
    values = []
    for channel in range(x.shape[2]):
        xc, yc = x[..., channel], y[..., channel]

        def blur(image: np.ndarray) -> np.ndarray:
            full = cv2.filter2D(image, -1, window, borderType=cv2.BORDER_REFLECT)
            return full[half : full.shape[0] - half, half : full.shape[1] - half]

        mu_x, mu_y = blur(xc), blur(yc)
        var_x = blur(xc * xc) - mu_x**2
        var_y = blur(yc * yc) - mu_y**2
        cov = blur(xc * yc) - mu_x * mu_y
        numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
        denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        values.append(float(np.mean(numerator / denominator)))
    return float(np.mean(values))


def l2_residual(reference: np.ndarray, test: np.ndarray) -> float:
    """The paper's point-by-point L2 residual: the Euclidean norm of the RGB difference of each
    pixel (0-255 levels), averaged over the pixels. (The paper reports 17.05 on MARS.)

    Raises:
        ValueError: shapes differ or the images are empty.
    """
    _check_pair(reference, test)
    diff = _as_float(reference) - _as_float(test)
    if diff.ndim == 2:
        return float(np.mean(np.abs(diff)))
    return float(np.mean(np.sqrt((diff**2).sum(axis=-1))))


def flicker(patches: Sequence[np.ndarray]) -> float:
    """Mean frame-to-frame change inside a track's ROI: the mean absolute difference (0-255
    levels) between consecutive patches of one track, all brought to the first patch's size.

    Raises:
        ValueError: fewer than two patches.
    """
    if len(patches) < 2:
        raise ValueError(f"flicker needs at least two patches of a track, got {len(patches)}")
    height, width = patches[0].shape[:2]
    previous = _as_float(patches[0])
    changes = []
    for patch in patches[1:]:
        if patch.shape[:2] != (height, width):
            patch = cv2.resize(patch, (width, height), interpolation=cv2.INTER_AREA)
        current = _as_float(patch)
        changes.append(float(np.mean(np.abs(current - previous))))
        previous = current
    return float(np.mean(changes))


#: BT.601 RGB -> Y, Cb, Cr rows (as ``models.losses``; offsets do not matter to a Laplacian).
_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)


def high_frequency_energy(images: np.ndarray) -> np.ndarray:
    """Mean squared 3x3 Laplacian (``[[0,1,0],[1,-4,1],[0,1,0]]``, valid region) of the Y, Cb
    and Cr planes (BT.601) of each image: ``N x 3``. The numpy twin of
    ``models.losses.high_frequency_energy`` (images ``N x 3 x H x W`` in [0, 1]; a test checks
    that both agree).

    Raises:
        ValueError: not ``N x 3 x H x W`` with ``H, W >= 3``.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or images.shape[1] != 3 or min(images.shape[2:]) < 3:
        raise ValueError(f"expected N x 3 x H x W images (H, W >= 3), got {images.shape}")
    ycc = np.einsum("kc,nchw->nkhw", _YCBCR, images)
    lap = (
        ycc[..., :-2, 1:-1]
        + ycc[..., 2:, 1:-1]
        + ycc[..., 1:-1, :-2]
        + ycc[..., 1:-1, 2:]
        - 4.0 * ycc[..., 1:-1, 1:-1]
    )
    return (lap**2).mean(axis=(2, 3))


def high_frequency_ratio(
    originals: Sequence[np.ndarray], replaced: Sequence[np.ndarray]
) -> dict[str, float | int]:
    """Fine detail of ``a`` relative to ``x``: the mean :func:`high_frequency_energy` of the
    replaced images over that of the originals, for luma (Y) and chroma (Cb and Cr pooled).
    1 = as much fine detail as the real faces; the round-1 speckle shows as chroma >> 1.

    Images are ``H x W x 3`` uint8 (0-255), pairwise of one size (sizes may differ between
    pairs).

    Raises:
        ValueError: no pair, pairs of different sizes, or images under 3x3.
        EvaluationError: the originals have no high-frequency energy at all.
    """
    if not originals or len(originals) != len(replaced):
        raise ValueError(f"need pairs of images, got {len(originals)} and {len(replaced)}")
    ex, ea = [], []
    for x, a in zip(originals, replaced, strict=True):
        _check_pair(x, a)
        pair = np.stack([x, a]).transpose(0, 3, 1, 2) / 255.0
        energy = high_frequency_energy(pair)
        ex.append(energy[0])
        ea.append(energy[1])
    mx, ma = np.mean(ex, axis=0), np.mean(ea, axis=0)
    if mx[0] <= 0 or mx[1:].sum() <= 0:
        raise EvaluationError("the original images have no high-frequency energy")
    return {
        "luma": float(ma[0] / mx[0]),
        "chroma": float(ma[1:].sum() / mx[1:].sum()),
        "images": len(ex),
    }


def match_detections(
    detections: Sequence[tuple[Box, float]],
    truths: Sequence[Box],
    iou_threshold: float = 0.5,
) -> list[tuple[float, bool]]:
    """Greedy VOC matching: detections by decreasing score, each matched to the unmatched truth
    with the highest IoU >= ``iou_threshold``. Returns ``(score, is_true_positive)`` per
    detection."""
    order = sorted(range(len(detections)), key=lambda k: -detections[k][1])
    taken = [False] * len(truths)
    result = []
    for k in order:
        box, score = detections[k]
        best, best_iou = -1, iou_threshold
        for t, truth in enumerate(truths):
            overlap = iou(box, truth)
            if not taken[t] and overlap >= best_iou:
                best, best_iou = t, overlap
        if best >= 0:
            taken[best] = True
        result.append((float(score), best >= 0))
    return result


def average_precision(matches: Sequence[tuple[float, bool]], truth_count: int) -> float:
    """VOC-style average precision (area under the interpolated precision-recall curve, all
    points) of scored detections pooled over images against ``truth_count`` true faces.

    Raises:
        EvaluationError: ``truth_count`` is not positive.
    """
    if truth_count <= 0:
        raise EvaluationError("average precision needs at least one ground-truth face")
    if not matches:
        return 0.0
    ordered = sorted(matches, key=lambda m: -m[0])
    hits = np.array([m[1] for m in ordered], dtype=np.float64)
    tp = np.cumsum(hits)
    fp = np.cumsum(1.0 - hits)
    recall = tp / truth_count
    precision = tp / np.maximum(tp + fp, 1e-12)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    for k in range(len(precision) - 2, -1, -1):
        precision[k] = max(precision[k], precision[k + 1])
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))
