"""Learning I: train the pairwise attribute matcher Da on labelled face crops.

For a pair (x, x') the target is ``b = [1{l_1 == l_1'}, ..., 1{l_t == l_t'}]``; the ``id``
label compares subjects. A label unknown (-1) on either side is masked out of the loss. Pairs
are drawn so that ``positive_fraction`` of them show one subject twice (different images when
the subject has several), the rest are random pairs; Da is trained with binary cross-entropy
(on logits, for stability) and evaluated by ROC AUC per label on held-out subjects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from models.face_source import FaceArrays
from models.networks import define_matcher
from models.networks.matcher import PairMatcher

__all__ = [
    "PairSampler",
    "evaluate_matcher",
    "matcher_step",
    "pair_targets",
    "roc_auc",
    "to_tensor",
]

log = logging.getLogger(__name__)


def to_tensor(images: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
    """``N x S x S x 3`` uint8 -> ``N x 3 x S x S`` float32 in [0,1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return tensor.to(device) if device is not None else tensor


def pair_targets(
    labels: np.ndarray,
    subject: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    label_names: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Agreement targets and known-mask (both ``B x t`` float32) for index pairs."""
    la, lb = labels[first], labels[second]
    target = (la == lb).astype(np.float32)
    mask = ((la >= 0) & (lb >= 0)).astype(np.float32)
    if "id" in label_names:
        k = label_names.index("id")
        target[:, k] = (subject[first] == subject[second]).astype(np.float32)
        mask[:, k] = 1.0
    return target, mask


@dataclass
class PairSampler:
    """Draws index pairs among ``indices``: a share of same-subject pairs, the rest random.

    With ``group`` (e.g. each crop's source dataset), the random pairs are drawn within one
    group: otherwise most negatives pair two datasets whose framing differs, and Da learns to
    tell datasets apart instead of people.
    """

    subject: np.ndarray
    indices: np.ndarray
    positive_fraction: float
    seed: int
    group: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        by_subject: dict[int, list[int]] = {}
        for i in self.indices:
            by_subject.setdefault(int(self.subject[i]), []).append(int(i))
        self.multi = [np.array(v) for v in by_subject.values() if len(v) >= 2]
        if len(self.indices) < 2:
            raise ValueError("need at least two face crops to draw pairs")
        self.by_group: dict[int, np.ndarray] = {}
        if self.group is not None:
            groups = self.group[self.indices]
            for g in np.unique(groups):
                self.by_group[int(g)] = self.indices[groups == g]

    def draw(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        n_pos = round(count * self.positive_fraction) if self.multi else 0
        first = np.empty(count, dtype=np.int64)
        second = np.empty(count, dtype=np.int64)
        for k in range(n_pos):
            members = self.multi[self.rng.integers(len(self.multi))]
            first[k], second[k] = self.rng.choice(members, size=2, replace=False)
        rest = count - n_pos
        first[n_pos:] = self.rng.choice(self.indices, size=rest)
        if self.group is None:
            second[n_pos:] = self.rng.choice(self.indices, size=rest)
        else:
            for k in range(n_pos, count):
                second[k] = self.rng.choice(self.by_group[int(self.group[first[k]])])
        return first, second


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and small brightness changes (labels are invariant to both)."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    gain = 1.0 + 0.2 * (torch.rand(x.shape[0], 1, 1, 1, generator=generator) - 0.5)
    return (x * gain).clamp(0.0, 1.0)


def matcher_step(
    matcher: PairMatcher,
    optimiser: torch.optim.Optimizer,
    first: torch.Tensor,
    second: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
) -> float:
    """One update on masked BCE; both pair orders are used (Da should be symmetric)."""
    matcher.train()
    logits = matcher.logits(torch.cat([first, second]), torch.cat([second, first]))
    target2, mask2 = torch.cat([target, target]), torch.cat([mask, mask])
    loss = (F.binary_cross_entropy_with_logits(logits, target2, reduction="none") * mask2).sum()
    loss = loss / mask2.sum().clamp(min=1.0)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.detach())


def roc_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted half; NaN without both classes."""
    scores = np.asarray(scores, dtype=np.float64)
    positives = np.asarray(positives, dtype=bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty_like(scores)
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first_idx, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first_idx + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@torch.no_grad()
def evaluate_matcher(
    matcher: PairMatcher,
    faces: FaceArrays,
    indices: np.ndarray,
    pairs: int,
    seed: int,
    device: torch.device,
    batch: int = 256,
) -> dict[str, float]:
    """ROC AUC per label on ``pairs`` held-out pairs (half same-subject); NaN if not measurable."""
    matcher.eval()
    sampler = PairSampler(faces.subject, indices, 0.5, seed, faces.group)
    first, second = sampler.draw(pairs)
    target, mask = pair_targets(faces.labels, faces.subject, first, second, faces.label_names)
    scores = []
    for start in range(0, pairs, batch):
        a = to_tensor(faces.images[first[start : start + batch]], device)
        b = to_tensor(faces.images[second[start : start + batch]], device)
        scores.append(matcher(a, b).cpu().numpy())
    probs = np.concatenate(scores)
    result = {}
    for k, name in enumerate(faces.label_names):
        known = mask[:, k] > 0
        result[f"auc_{name}"] = roc_auc(probs[known, k], target[known, k] > 0.5)
    return result


def build_matcher(
    label_names: tuple[str, ...], input_size: int, name: str = "table1"
) -> PairMatcher:
    """Da for ``label_names`` (factory wrapper kept here so export/training agree)."""
    return define_matcher(name, num_labels=len(label_names), input_size=input_size)


def augment_pair(
    first: torch.Tensor, second: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent label-preserving augmentation of both sides of a batch of pairs."""
    return _augment(first, generator), _augment(second, generator)
