"""The paper's six loss terms (PAPER.md), each a small function, plus the WGAN-GP penalty.

Notation: x the original crops, a = Ue(x) the de-identified ones, r = Ud(a) the reconstructions;
Da(p, q) in [0,1]^t the frozen pairwise matcher's agreement per label; s in {-1,0,1}^t.

Sign convention of the attribute control (``anonymization_loss``)
-----------------------------------------------------------------
``s_i = +1`` means label i must AGREE between x and a, ``s_i = -1`` that it must DISAGREE,
``0`` that it is free; ``s_ID`` is always -1. The paper's equation (9) writes
``E s . (2 Da(x, a) - 1)``, which, minimised, pushes Da *down* where ``s = +1``: the opposite of
its own text and Fig. 3. We implement the intended behaviour:

    Lano = E [ -s . (2 Da(x, a) - 1) ] / |s|_1

so minimising it raises agreement where s = +1 and lowers it where s = -1. (Division by the
number of non-zero entries keeps the term's scale independent of t.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F  # noqa: N812

__all__ = [
    "anonymization_loss",
    "check_s_vector",
    "chi_square",
    "colour_distribution_loss",
    "critic_loss",
    "diversity_loss",
    "embedding_similarity_loss",
    "generator_adversarial_loss",
    "gradient_penalty",
    "high_frequency_band_loss",
    "high_frequency_energy",
    "high_frequency_loss",
    "layout_loss",
    "noise_diversity_loss",
    "reconstruction_loss",
    "ring_loss",
    "ring_mask",
    "soft_histogram",
    "temporal_consistency_loss",
]

Matcher = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_s_vector(s: Sequence[int], labels: Sequence[str], id_label: str = "id") -> None:
    """Validate the attribute-control vector against the label names.

    Raises:
        ValueError: wrong length, a value outside {-1, 0, 1}, or ``s`` of the ID label not -1.
    """
    if len(s) != len(labels):
        raise ValueError(f"s has {len(s)} values but there are {len(labels)} labels {list(labels)}")
    bad = [v for v in s if v not in (-1, 0, 1)]
    if bad:
        raise ValueError(f"s values must be -1, 0 or 1, got {bad}")
    if id_label in labels and s[list(labels).index(id_label)] != -1:
        raise ValueError(f"s for {id_label!r} must be -1 (de-identification), got {list(s)}")


def reconstruction_loss(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Lmse = ||x - Ud(Ue(x))||², as a mean over pixels and channels."""
    return F.mse_loss(r, x)


def critic_loss(
    real_scores: torch.Tensor, a_scores: torch.Tensor, r_scores: torch.Tensor
) -> torch.Tensor:
    """Ladv1 = -2 E Df(x) + E Df(a) + E Df(r) (minimised by the critic; add the penalty)."""
    return -2.0 * real_scores.mean() + a_scores.mean() + r_scores.mean()


def generator_adversarial_loss(a_scores: torch.Tensor, r_scores: torch.Tensor) -> torch.Tensor:
    """Ladv2 = -E Df(a) - E Df(r) (minimised by Ue and Ud)."""
    return -a_scores.mean() - r_scores.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    target: float = 1.0,
) -> torch.Tensor:
    """WGAN-GP penalty E[(||grad Df(x_hat)||_2 - target)²] at random interpolates.

    ``x_hat = e x + (1 - e) fake`` with ``e ~ U(0,1)`` per sample; the graph is kept
    (``create_graph``) so the penalty trains the critic. ``fake`` is detached here.
    ``critic`` maps images to one score per image.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - target) ** 2).mean()


def anonymization_loss(
    matcher: Matcher, x: torch.Tensor, a: torch.Tensor, s: torch.Tensor
) -> torch.Tensor:
    """Lano with the intended sign (module docstring): -E s.(2 Da(x, a) - 1) / |s|_1."""
    agreement = matcher(x, a)  # N x t
    weight = s.abs().sum().clamp(min=1.0)
    return -((2.0 * agreement - 1.0) * s).sum(dim=1).mean() / weight


def _pairs(
    groups: torch.Tensor,
    same: bool,
    within: torch.Tensor | None = None,
    max_pairs: int | None = None,
) -> torch.Tensor:
    """Index pairs (i < j) whose ``groups`` are equal (same) or differ, inside ``within`` groups.

    With ``max_pairs``, a random subset of that many pairs (an unbiased estimate of the
    expectation over all pairs, at a fraction of Da's cost).
    """
    n = groups.shape[0]
    i, j = torch.triu_indices(n, n, offset=1, device=groups.device)
    keep = (groups[i] == groups[j]) if same else (groups[i] != groups[j])
    if within is not None:
        keep &= within[i] == within[j]
    pairs = torch.stack([i[keep], j[keep]])
    if max_pairs is not None and pairs.shape[1] > max_pairs:
        pairs = pairs[:, torch.randperm(pairs.shape[1], device=groups.device)[:max_pairs]]
    return pairs


def temporal_consistency_loss(
    matcher: Matcher,
    a: torch.Tensor,
    sequence_ids: torch.Tensor,
    label_mask: torch.Tensor,
    max_pairs: int | None = None,
) -> torch.Tensor:
    """Lcon = -E 1.Da(a_{ijk}, a_{ijk'}) over pairs of frames of one sequence (k != k').

    ``label_mask`` (t, 0/1) selects the labels summed (the paper's all-ones vector). Returns a
    zero that still carries a graph when the batch has no such pair.
    """
    idx = _pairs(sequence_ids, same=True, max_pairs=max_pairs)
    if idx.shape[1] == 0:
        return a.sum() * 0.0
    agreement = matcher(a[idx[0]], a[idx[1]])
    return -(agreement * label_mask).sum(dim=1).mean() / label_mask.sum().clamp(min=1.0)


def diversity_loss(
    matcher: Matcher,
    a: torch.Tensor,
    subject_ids: torch.Tensor,
    sequence_ids: torch.Tensor,
    label_mask: torch.Tensor,
    max_pairs: int | None = None,
) -> torch.Tensor:
    """Ldiv = E 1.Da(a_{ij.}, a_{ij'.}) over pairs from different sequences of one subject.

    ``label_mask`` selects the labels summed; the paper sums all of them, we default (in the
    training config) to the labels with ``s = -1``: a label kept by ``s = +1`` is the same across
    a subject's sequences by design, and pushing it apart would fight ``Lano``.
    """
    idx = _pairs(sequence_ids, same=False, within=subject_ids, max_pairs=max_pairs)
    if idx.shape[1] == 0:
        return a.sum() * 0.0
    agreement = matcher(a[idx[0]], a[idx[1]])
    return (agreement * label_mask).sum(dim=1).mean() / label_mask.sum().clamp(min=1.0)


def soft_histogram(
    images: torch.Tensor, bins: int = 16, bandwidth: float | None = None
) -> torch.Tensor:
    """Differentiable per-channel colour histogram, N x C x bins, each row summing to 1.

    Each pixel value v in [0,1] votes for every bin centre c_b with the Gaussian kernel
    ``exp(-(v - c_b)² / (2 bandwidth²))`` (bandwidth defaults to the bin width), so the
    histogram has a gradient with respect to every pixel (a hard histogram has none), and two
    histograms some bins apart still pull toward each other.
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    width = bandwidth or 1.0 / bins
    centres = (torch.arange(bins, device=images.device, dtype=images.dtype) + 0.5) / bins
    values = images.flatten(2).unsqueeze(-1)  # N x C x P x 1
    votes = torch.exp(-0.5 * ((values - centres) / width) ** 2)
    hist = votes.sum(dim=2)
    return hist / hist.sum(dim=-1, keepdim=True).clamp(min=1e-8)


def chi_square(h1: torch.Tensor, h2: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Chi-square distance sum (h1 - h2)² / (h1 + h2) over the last axis."""
    return ((h1 - h2) ** 2 / (h1 + h2 + eps)).sum(dim=-1)


def colour_distribution_loss(x: torch.Tensor, a: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """Ldis = E chi²(h(x), h(a)) with soft histograms, averaged over channels."""
    return chi_square(soft_histogram(x, bins), soft_histogram(a, bins)).mean()


# -- terms beyond the paper (the public face: background ring, colour speckle, noise) ----------

#: BT.601 RGB -> (Y, Cb, Cr) rows, for inputs in [0, 1] (offsets do not matter to a Laplacian).
_YCBCR = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def ring_mask(size: int, fraction: float, device: torch.device | None = None) -> torch.Tensor:
    """``1 x 1 x S x S`` mask, 1 within ``fraction * S`` pixels of the border (at least 1)."""
    width = max(1, round(fraction * size))
    mask = torch.ones(size, size, device=device)
    mask[width:-width, width:-width] = 0.0
    return mask[None, None]


def ring_loss(x: torch.Tensor, a: torch.Tensor, fraction: float) -> torch.Tensor:
    """Background consistency: mean |a - x| over the ROI's outer ring (``ring_mask``).

    The edge replaces the whole head ROI and feathers only a narrow band into the scene
    (``shared.compositing``); when ``a`` carries the ring (background, the frame around the
    head) through, the band blends two near-equal images and the box border disappears.
    """
    mask = ring_mask(x.shape[-1], fraction, x.device)
    return ((a - x).abs() * mask).sum(dim=(1, 2, 3)).mean() / (mask.sum() * x.shape[1])


def high_frequency_energy(images: torch.Tensor) -> torch.Tensor:
    """Mean squared 3x3 Laplacian of Y, Cb and Cr (BT.601) per image: ``N x 3``.

    The evaluation's luma/chroma high-frequency ratios are this energy of ``a`` over that of
    ``x`` (``models.evaluation.metrics``).
    """
    ycc = torch.einsum("kc,nchw->nkhw", _YCBCR.to(images.device, images.dtype), images)
    kernel = _LAPLACIAN.to(images.device, images.dtype).expand(3, 1, 3, 3)
    lap = F.conv2d(ycc, kernel, groups=3)
    return lap.pow(2).mean(dim=(2, 3))


def high_frequency_loss(
    x: torch.Tensor, a: torch.Tensor, chroma_weight: float = 1.0, eps: float = 1e-6
) -> torch.Tensor:
    """Squared log ratio of ``a``'s high-frequency energy to ``x``'s, per channel (Y, Cb, Cr).

    A ``Ue`` free to hide what ``Ud`` needs anywhere puts it in coloured speckle (chroma
    Laplacian energy about 25x that of real faces); this term asks ``a`` to have a real face's
    amount of fine detail in luma and chroma alike (chroma weighted by ``chroma_weight``).
    """
    return _channel_mean(_high_frequency_log_ratio(x, a, eps).pow(2), chroma_weight)


def _high_frequency_log_ratio(x: torch.Tensor, a: torch.Tensor, eps: float) -> torch.Tensor:
    """log of ``a``'s high-frequency energy over ``x``'s, per image and channel: ``N x 3``."""
    return torch.log(high_frequency_energy(a) + eps) - torch.log(high_frequency_energy(x) + eps)


def _channel_mean(per_channel: torch.Tensor, chroma_weight: float) -> torch.Tensor:
    """Mean over images of ``N x 3`` (Y, Cb, Cr) values, chroma weighted by ``chroma_weight``."""
    weights = torch.tensor(
        [1.0, chroma_weight, chroma_weight], device=per_channel.device, dtype=per_channel.dtype
    )
    return (per_channel * weights).sum(dim=1).mean() / weights.sum()


def high_frequency_band_loss(
    x: torch.Tensor,
    a: torch.Tensor,
    luma_band: tuple[float, float] = (0.7, 1.5),
    chroma_max: float = 2.0,
    chroma_weight: float = 1.0,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Squared distance of ``a``'s high-frequency energy ratio to ``x``'s (log, per channel)
    from a band: luma within ``luma_band``, chroma (Cb, Cr) at most ``chroma_max``; zero inside.

    Unlike :func:`high_frequency_loss`, a face whose fine detail is already real-like is left
    alone: what is asked is no speckle (chroma above the cap) and neither a smeared nor a
    noisy luma, not one amount of detail that a blur plus a periodic pattern can also supply.

    Raises:
        ValueError: ``luma_band`` is not ``0 < low < high`` or ``chroma_max`` is not positive.
    """
    low, high = luma_band
    if not 0 < low < high or chroma_max <= 0:
        raise ValueError(f"bad band: luma {luma_band}, chroma max {chroma_max}")
    log_ratio = _high_frequency_log_ratio(x, a, eps)
    bound = {"device": x.device, "dtype": x.dtype}
    lower = torch.tensor([math.log(low), -math.inf, -math.inf], **bound)  # chroma: no floor
    upper = torch.tensor([math.log(high), math.log(chroma_max), math.log(chroma_max)], **bound)
    excess = F.relu(log_ratio - upper) + F.relu(lower - log_ratio)
    return _channel_mean(excess.pow(2), chroma_weight)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``N x C x H x W`` images (reflected borders, 3 sigma radius).

    Raises:
        ValueError: ``sigma`` is not positive.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def anchor_loss(a: torch.Tensor, reference: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mean |blur(a) - blur(reference)|: ``a`` kept at a frozen reference surrogate in all but
    its finest detail (Gaussian ``sigma`` px).

    A fine-tune that only caps ``a``'s chroma speckle (``high_frequency_band_loss``) lets
    ``Lmse`` walk ``Ue`` back toward ``x`` (measured: x<->a' 0.73 -> 0.90); anchored to the
    earlier ``Ue``'s output below the fine scale, the identity, pose and colours stay those of
    the earlier surrogate and only its fine detail may change.

    Raises:
        ValueError: the shapes differ or ``sigma`` is not positive.
    """
    if a.shape != reference.shape:
        raise ValueError(f"a {tuple(a.shape)} and reference {tuple(reference.shape)} differ")
    return gaussian_blur(a - reference, sigma).abs().mean()


def noise_diversity_loss(
    matcher: Matcher, a_first: torch.Tensor, a_second: torch.Tensor, id_index: int = 0
) -> torch.Tensor:
    """Two noise planes, two people: Da's ID agreement between ``Ue(x, n1)`` and ``Ue(x, n2)``.

    With the noise drawn per sequence (as the edge draws it per track) ``Lcon`` keeps one
    identity along a sequence; this term makes another plane give another identity, so one
    person is not the same fake person on every track and camera.
    """
    return matcher(a_first, a_second)[:, id_index].mean()


def layout_loss(x: torch.Tensor, a: torch.Tensor, grid: int = 8) -> torch.Tensor:
    """Pose, lighting and layout kept: mean |a - x| after average pooling to ``grid x grid``.

    At a few pixels across a face's identity is mostly gone, but where the head, the hair, the
    light and the background lie is still there: the paper's promise that ``a`` keeps pose,
    lighting and background while the identity changes. (Measured here: pulled at 8 x 8 with
    weight 5, ``a`` became a blurred ``x`` that SFace still linked, x<->a' AUC 0.82 at 2,000
    steps; the shipped run uses 4 x 4.)
    """
    size = x.shape[-1]
    kernel = max(1, size // grid)
    return (F.avg_pool2d(a, kernel) - F.avg_pool2d(x, kernel)).abs().mean()


def embedding_similarity_loss(
    first: torch.Tensor, second: torch.Tensor, margin: float = 0.1
) -> torch.Tensor:
    """Two faces, two people, as a real recognizer sees it: mean ``relu(cos - margin)`` of
    L2-normalised embeddings (``models.networks.identity``). ``margin`` is about the cosine of
    two strangers (SFace: impostor mean ~0.07), so the term stops pushing once ``a`` is as far
    from ``x`` (or ``Ue(x, n1)`` from ``Ue(x, n2)``) as a stranger is."""
    return F.relu((first * second).sum(dim=1) - margin).mean()
