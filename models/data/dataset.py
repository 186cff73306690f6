"""Torch view of a pack: ``(image, labels, subject, sequence)`` items, optional video jitter.

Items are addressed by a plain dataset index, or by a :class:`FrameKey` (what
:class:`~models.data.sampler.PJKBatchSampler` yields): a key with ``motion_seed >= 0`` asks for
view ``view`` of ``n_views`` of a synthetic clip made from that frame by the dataset's
:class:`~models.data.jitter.VideoJitter` (used when a sequence has fewer real frames than the
batch needs). Without a jitter such keys return the plain frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .jitter import VideoJitter
from .pack import PackedFaces

__all__ = ["FaceSequenceDataset", "FrameKey"]


class FrameKey(NamedTuple):
    """One batch slot: dataset ``index``; ``view``/``n_views`` its place in the sequence slot;
    ``motion_seed`` >= 0 to make a jittered view (synthetic motion), -1 for the real frame."""

    index: int
    view: int = 0
    n_views: int = 1
    motion_seed: int = -1


class FaceSequenceDataset(Dataset):
    """Frames of a :class:`PackedFaces`, optionally restricted to some subjects.

    ``dataset[i]`` -> ``(image, labels, subject, sequence)``: ``image`` float32 ``[3, S, S]`` in
    ``[0, 1]``; ``labels`` int64 ``[t]`` (-1 unknown) in the order of :attr:`label_names`;
    ``subject`` and ``sequence`` the pack-wide indices (ints; equal values = same subject /
    same sequence, across the whole pack).

    Args:
        pack: the packed faces.
        subjects: subject indices to keep (e.g. the train half of
            :meth:`PackedFaces.split_subjects`); ``None`` keeps all.
        label_names: label columns to return, in this order (default: all of the pack's).
        jitter: makes the synthetic views asked for by :class:`FrameKey` motion seeds.

    Raises:
        ValueError: a label name the pack does not have; subject indices out of range; no
            frame left.
    """

    def __init__(
        self,
        pack: PackedFaces,
        *,
        subjects: Sequence[int] | np.ndarray | None = None,
        label_names: Sequence[str] | None = None,
        jitter: VideoJitter | None = None,
    ) -> None:
        self.pack = pack
        self.jitter = jitter
        self.label_names = tuple(label_names) if label_names is not None else pack.label_names
        missing = [n for n in self.label_names if n not in pack.label_names]
        if missing:
            raise ValueError(f"labels {missing} are not in the pack (it has {pack.label_names})")
        self._columns = np.array(
            [pack.label_names.index(n) for n in self.label_names], dtype=np.int64
        )
        if subjects is None:
            self.rows = np.arange(len(pack), dtype=np.int64)
        else:
            keep = np.zeros(pack.n_subjects, dtype=bool)
            subjects_arr = np.asarray(subjects, dtype=np.int64)
            if subjects_arr.size and (
                subjects_arr.min() < 0 or subjects_arr.max() >= pack.n_subjects
            ):
                raise ValueError(f"subject indices must be in 0..{pack.n_subjects - 1}")
            keep[subjects_arr] = True
            self.rows = np.flatnonzero(keep[pack.subject]).astype(np.int64)
        if len(self.rows) == 0:
            raise ValueError("the dataset has no frame (no subject kept?)")

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def size(self) -> int:
        return self.pack.size

    def sequences(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sequences in dataset-index space: ``(subject, start, stop)`` arrays, one entry per
        sequence; its frames are dataset indices ``start..stop-1`` in temporal order."""
        seq = self.pack.sequence[self.rows]
        starts = np.flatnonzero(np.r_[True, seq[1:] != seq[:-1]])
        stops = np.r_[starts[1:], len(seq)]
        return self.pack.subject[self.rows[starts]].astype(np.int64), starts, stops

    def raw_image(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``S x S x 3`` uint8, without jitter."""
        return self.pack.image(int(self.rows[index]))

    def __getitem__(
        self, key: int | FrameKey | tuple[int, int, int, int]
    ) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        key = FrameKey(*key) if isinstance(key, tuple) else FrameKey(int(key))
        row = int(self.rows[key.index])
        image = self.pack.image(row)
        if key.motion_seed >= 0 and self.jitter is not None:
            image = self.jitter.view(image, key.motion_seed, key.view, key.n_views)
        tensor = (
            torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
        )
        labels = torch.from_numpy(self.pack.labels[row, self._columns].astype(np.int64))
        return tensor, labels, int(self.pack.subject[row]), int(self.pack.sequence[row])
