"""From a data configuration to what the trainers consume (packs, label columns, batches)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.config import DataConfig, DeidConfig
from models.data import (
    FaceSequenceDataset,
    PackedFaces,
    PJKBatchSampler,
    VideoJitter,
    make_synthetic_faces,
)
from models.uunet_parts import Batch

__all__ = [
    "FaceArrays",
    "batch_stream",
    "face_arrays",
    "open_faces",
    "split_subjects",
    "training_use",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceArrays:
    """Face crops with the label columns a trainer asked for (labels int64, -1 unknown)."""

    images: np.ndarray  # N x S x S x 3 uint8 (may be memory-mapped)
    labels: np.ndarray  # N x t int64
    subject: np.ndarray  # N int64
    sequence: np.ndarray  # N int64
    label_names: tuple[str, ...]
    group: np.ndarray | None = None  # N int64: source dataset of each crop


def open_faces(data: DataConfig, size: int, label_names: Sequence[str], seed: int) -> PackedFaces:
    """The packed file of ``data.packed``, or freshly generated synthetic faces.

    Raises:
        models.data.PackFormatError: an unreadable pack.
        ValueError: the pack's crop size or labels do not fit the configuration.
    """
    if data.source == "synthetic":
        pack = make_synthetic_faces(
            data.synthetic_subjects,
            data.synthetic_sequences,
            data.synthetic_frames,
            size=size,
            seed=seed,
            label_names=label_names,
        )
    else:
        pack = PackedFaces.open(data.packed)
    if pack.size != size:
        raise ValueError(
            f"{data.packed}: crops are {pack.size}x{pack.size}, the config needs {size}"
        )
    missing = [n for n in label_names if n not in pack.label_names]
    if missing:
        raise ValueError(f"{data.packed}: labels {missing} missing (it has {pack.label_names})")
    return pack


def face_arrays(pack: PackedFaces, label_names: Sequence[str]) -> FaceArrays:
    """The pack's images with the label columns ``label_names``, in that order."""
    columns = [pack.label_names.index(n) for n in label_names]
    return FaceArrays(
        images=pack.images,
        labels=pack.labels[:, columns].astype(np.int64),
        subject=pack.subject.astype(np.int64),
        sequence=pack.sequence.astype(np.int64),
        label_names=tuple(label_names),
        group=pack.source.astype(np.int64),
    )


def split_subjects(pack: PackedFaces, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) subject indices; everything trains when ``fraction`` is 0."""
    if fraction <= 0.0:
        return np.arange(pack.n_subjects), np.zeros(0, dtype=np.int64)
    return pack.split_subjects(fraction, seed)


def _sampler(
    dataset: FaceSequenceDataset,
    config: DeidConfig,
    seed: int = 0,
    world_size: int = 1,
    rank: int = 0,
) -> PJKBatchSampler:
    return PJKBatchSampler(
        dataset,
        config.subjects_per_batch,
        config.sequences_per_subject,
        config.frames_per_sequence,
        seed=seed,
        subject_policy=config.data.subject_policy,
        num_replicas=world_size,
        rank=rank,
    )


def batch_stream(
    pack: PackedFaces,
    subjects: np.ndarray,
    config: DeidConfig,
    rank: int = 0,
    world_size: int = 1,
) -> Callable[[int], Iterator[Batch]]:
    """``stream(seed)`` yields P x J x K :class:`Batch` es forever (epoch after epoch).

    One-frame sequences become K jittered views when ``config.data.jitter`` (video-like
    motion, so Lcon sees frame-to-frame change).

    Raises:
        ValueError: fewer than P subjects can give J sequences (see PJKBatchSampler).
    """
    dataset = FaceSequenceDataset(
        pack,
        subjects=subjects,
        label_names=config.labels,
        jitter=VideoJitter() if config.data.jitter else None,
    )

    counts = _sampler(dataset, config).subject_counts
    log.info(
        "subjects (subject_policy=%s): %d with %d+ sequences, %d with fewer (repeated: every "
        "term but Ldiv), %d skipped",
        config.data.subject_policy,
        counts["with_j_sequences"],
        config.sequences_per_subject,
        counts["repeated"],
        counts["skipped"],
    )

    def stream(seed: int) -> Iterator[Batch]:
        sampler = _sampler(dataset, config, seed, world_size, rank)
        epoch = 0
        while True:
            sampler.set_epoch(epoch)
            for keys in sampler:
                items = [dataset[key] for key in keys]
                yield Batch(
                    torch.stack([item[0] for item in items]),
                    torch.stack([item[1] for item in items]),
                    torch.tensor([item[2] for item in items], dtype=torch.long),
                    torch.tensor([item[3] for item in items], dtype=torch.long),
                )
            epoch += 1

    return stream


def training_use(pack: PackedFaces, config: DeidConfig) -> dict[str, int | str]:
    """What Learning II took of a pack: held-out and training subjects, and how the subject
    policy treated the training ones (for the model card's data block).

    Raises:
        ValueError: fewer than P subjects can give J sequences (see PJKBatchSampler).
    """
    train, held = split_subjects(pack, config.data.holdout_fraction, config.seed)
    dataset = FaceSequenceDataset(pack, subjects=train, label_names=config.labels)
    counts = _sampler(dataset, config).subject_counts
    return {
        "subject_policy": config.data.subject_policy,
        "held_out_subjects": len(held),
        "training_subjects": len(train),
        "subjects_with_j_sequences": counts["with_j_sequences"],
        "subjects_repeated": counts["repeated"],
        "subjects_skipped": counts["skipped"],
        "training_frames": len(dataset),
    }


def preview_images(pack: PackedFaces, subjects: np.ndarray, count: int, seed: int) -> torch.Tensor:
    """``count`` crops of distinct subjects (for the x | a | r sample grids)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(subjects, size=min(count, len(subjects)), replace=False)
    rows = [int(np.flatnonzero(pack.subject == s)[0]) for s in chosen]
    images = np.stack([pack.image(r) for r in rows])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
