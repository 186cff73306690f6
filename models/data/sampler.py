"""Batches of P subjects x J sequences x K frames, so Lcon and Ldiv have something to compare.

Each batch is a list of exactly ``P * J * K`` :class:`~models.data.dataset.FrameKey`, ordered
subject-major, then sequence, then frame: slot ``b`` holds subject slot ``b // (J*K)``, sequence
slot ``b // K``, frame ``b % K``. So batch tensors reshape to ``[P, J, K, ...]``; the
``subject`` and ``sequence`` tensors the dataset returns tell which items really share a
subject or a sequence (:func:`same_subject_and_sequence` builds the pair masks): use them, not
the slot structure, when a policy below may repeat a sequence.

Policies (explicit, configurable):

* ``subject_policy="skip"`` (default): only subjects with at least J eligible sequences are
  drawn, so the J sequences of a subject are always distinct (what Ldiv needs).
  ``"repeat"``: every subject is eligible; one with fewer sequences fills its J slots by drawing
  its sequences again (each at least once). A repeated slot has the same ``sequence`` value; its
  frames are drawn again (a short sequence gets a new jitter seed, so different synthetic motion).
* ``frame_policy="repeat"`` (default): a sequence with fewer than K frames fills its K slots
  with its frames spread in temporal order (``floor(k * n / K)``), each slot a jittered view of
  a smooth synthetic clip (``motion_seed`` set; the dataset needs a
  :class:`~models.data.jitter.VideoJitter`, else the repeats are identical copies).
  ``"skip"``: only sequences with at least K frames are eligible.
* A sequence with at least K frames gives K distinct frames, drawn at random and kept in
  temporal order; they are real frames (no jitter).

Each epoch visits every eligible subject at most once (in a random order) unless
``batches_per_epoch`` asks for more. Deterministic: the batches depend only on ``seed``, the
epoch (:meth:`set_epoch`) and the dataset. With ``num_replicas > 1`` (DDP), rank ``r`` takes
batches ``r, r + num_replicas, ...`` of the same global sequence: disjoint across ranks, equal
counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Sampler

from .dataset import FaceSequenceDataset, FrameKey

__all__ = ["PJKBatchSampler", "same_subject_and_sequence"]


def same_subject_and_sequence(
    subject: torch.Tensor, sequence: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair masks ``[B, B]`` (bool) from a batch's subject and sequence tensors.

    ``same_subject[i, j]``: items i and j show the same subject; ``same_sequence[i, j]``: the
    same sequence. Ldiv pairs are ``same_subject & ~same_sequence``; Lcon pairs are
    ``same_sequence`` off the diagonal.
    """
    same_subject = subject[:, None] == subject[None, :]
    same_sequence = sequence[:, None] == sequence[None, :]
    return same_subject, same_sequence


class PJKBatchSampler(Sampler[list[FrameKey]]):
    """Yields lists of ``P * J * K`` frame keys (see the module docstring).

    Args:
        dataset: the frames to draw from.
        P, J, K: subjects per batch, sequences per subject, frames per sequence (each >= 1).
        seed: base seed.
        subject_policy, frame_policy: see the module docstring.
        batches_per_epoch: batches per epoch *per replica*; default: as many as the eligible
            subjects fill once (``n_subjects // P // num_replicas``, at least 1).
        num_replicas, rank: DDP sharding.

    Raises:
        ValueError: P, J or K < 1, a bad policy, rank not in range, or fewer than P eligible
            subjects (the message gives the counts).
    """

    def __init__(
        self,
        dataset: FaceSequenceDataset,
        P: int,  # noqa: N803 (the paper's names)
        J: int,  # noqa: N803
        K: int,  # noqa: N803
        seed: int = 0,
        *,
        subject_policy: Literal["skip", "repeat"] = "skip",
        frame_policy: Literal["repeat", "skip"] = "repeat",
        batches_per_epoch: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if min(P, J, K) < 1:
            raise ValueError(f"P, J, K must be >= 1, got {P}, {J}, {K}")
        if subject_policy not in ("skip", "repeat") or frame_policy not in ("skip", "repeat"):
            raise ValueError(
                "subject_policy must be 'skip' or 'repeat'; frame_policy 'repeat' or 'skip'"
            )
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} not in 0..{num_replicas - 1}")
        self.P, self.J, self.K = P, J, K
        self.seed = seed
        self.subject_policy = subject_policy
        self.frame_policy = frame_policy
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        subject, starts, stops = dataset.sequences()
        lengths = stops - starts
        usable = lengths >= K if frame_policy == "skip" else np.ones(len(lengths), dtype=bool)
        by_subject: dict[int, list[tuple[int, int]]] = {}
        for s, a, b, ok in zip(
            subject.tolist(), starts.tolist(), stops.tolist(), usable.tolist(), strict=True
        ):
            if ok:
                by_subject.setdefault(s, []).append((a, b))
        need = J if subject_policy == "skip" else 1
        self._subjects = [seqs for _, seqs in sorted(by_subject.items()) if len(seqs) >= need]
        #: Subjects with at least J sequences (every loss), with fewer (repeated: Lcon, Lano,
        #: the per-photo terms, not Ldiv), and left out by the policy.
        self.subject_counts = {
            "with_j_sequences": sum(1 for seqs in by_subject.values() if len(seqs) >= J),
            "repeated": sum(1 for seqs in self._subjects if len(seqs) < J),
            "skipped": len(by_subject) - len(self._subjects),
        }
        if len(self._subjects) < P:
            raise ValueError(
                f"only {len(self._subjects)} subjects can give {J} sequences of {K} frames under "
                f"subject_policy={subject_policy!r}, frame_policy={frame_policy!r}; P={P} needs {P}"
            )
        default = max(1, len(self._subjects) // P // num_replicas)
        self.batches_per_epoch = batches_per_epoch if batches_per_epoch is not None else default
        if self.batches_per_epoch < 1:
            raise ValueError("batches_per_epoch must be >= 1")

    @property
    def batch_size(self) -> int:
        return self.P * self.J * self.K

    @property
    def eligible_subjects(self) -> int:
        return len(self._subjects)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches the next iteration yields (call once per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[list[FrameKey]]:
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, 0x9A3B])
        order: list[int] = []
        total = self.batches_per_epoch * self.num_replicas
        for b in range(total):
            while len(order) < self.P:
                order.extend(rng.permutation(len(self._subjects)).tolist())
            chosen, order = order[: self.P], order[self.P :]
            # Every rank draws every batch (same random stream) and keeps its share.
            batch = self._batch(chosen, rng)
            if b % self.num_replicas == self.rank:
                yield batch

    def _batch(self, chosen: list[int], rng: np.random.Generator) -> list[FrameKey]:
        keys: list[FrameKey] = []
        for s in chosen:
            sequences = self._subjects[s]
            n = len(sequences)
            if n >= self.J:
                picks = rng.choice(n, self.J, replace=False)
            else:  # subject_policy == "repeat": each sequence once, the rest drawn again
                picks = np.concatenate([rng.permutation(n), rng.integers(0, n, self.J - n)])
            for q in picks.tolist():
                keys.extend(self._frames(*sequences[q], rng))
        return keys

    def _frames(self, start: int, stop: int, rng: np.random.Generator) -> list[FrameKey]:
        n, K = stop - start, self.K  # noqa: N806
        if n >= K:
            chosen = np.sort(rng.choice(n, K, replace=False))
            return [FrameKey(start + int(f), k, K, -1) for k, f in enumerate(chosen)]
        motion = int(rng.integers(0, 2**31 - 1))
        return [FrameKey(start + (k * n) // K, k, K, motion) for k in range(K)]
