"""Tiny in-memory face sets and configs for fast training tests (16x16 crops, narrow nets)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.config import DataConfig, DeidConfig, MatcherConfig, NetworkConfig, RoiChannelConfig

LABELS = ("id", "gender", "ethnicity", "hairstyle")


@dataclass
class TinyFaces:
    images: np.ndarray
    labels: np.ndarray
    subject: np.ndarray
    sequence: np.ndarray
    label_names: tuple[str, ...] = LABELS


def tiny_faces(
    subjects: int = 8, sequences: int = 2, frames: int = 3, size: int = 16, seed: int = 0
) -> TinyFaces:
    """Each subject a colour blob (gender = brightness, ethnicity = hue), frames jittered."""
    rng = np.random.default_rng(seed)
    images, labels, subject, sequence = [], [], [], []
    yy, xx = np.mgrid[0:size, 0:size]
    for s in range(subjects):
        gender, ethnicity, hair = s % 2, (s // 2) % 3, (s // 6) % 2
        base = np.array([0.3 + 0.4 * gender, 0.2 + 0.3 * ethnicity, 0.5]) * 255
        for j in range(sequences):
            for _ in range(frames):
                cx, cy = size / 2 + rng.normal(0, 1), size / 2 + rng.normal(0, 1)
                blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (size / 4) ** 2))
                img = base[None, None, :] * blob[..., None] + rng.normal(0, 8, (size, size, 3))
                if hair:
                    img[: size // 4] = 40
                images.append(np.clip(img, 0, 255).astype(np.uint8))
                labels.append([s, gender, ethnicity, hair])
                subject.append(s)
                sequence.append(s * sequences + j)
    return TinyFaces(
        np.stack(images),
        np.array(labels, dtype=np.int64),
        np.array(subject, dtype=np.int64),
        np.array(sequence, dtype=np.int64),
    )


def tiny_matcher_config(**overrides: object) -> MatcherConfig:
    data = DataConfig(source="synthetic", holdout_fraction=0.25)
    base = dict(
        labels=LABELS,
        input_size=16,
        data=data,
        steps=6,
        batch_pairs=8,
        log_every=2,
        checkpoint_every=3,
        eval_pairs=20,
    )
    base.update(overrides)
    return MatcherConfig(**base)


def tiny_deid_config(matcher_run: Path | None = None, **overrides: object) -> DeidConfig:
    data = DataConfig(source="synthetic", holdout_fraction=0.0)
    base = dict(
        labels=LABELS,
        s=(-1, 1, 1, 0),
        input_size=16,
        matcher_run=matcher_run,
        data=data,
        network=NetworkConfig(unet_width=4, critic_width=4, critic_layers=2),
        roi_channel=RoiChannelConfig(min_size=8, max_size=40, groups=2),
        subjects_per_batch=2,
        sequences_per_subject=2,
        frames_per_sequence=2,
        steps=4,
        log_every=2,
        checkpoint_every=2,
    )
    base.update(overrides)
    return DeidConfig(**base)
