"""Tiny synthetic face packs and configs for fast training tests (16x16 crops, narrow nets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.config import DataConfig, DeidConfig, MatcherConfig, NetworkConfig, RoiChannelConfig
from models.data import PackedFaces
from models.face_source import batch_stream, open_faces

LABELS = ("id", "gender", "ethnicity", "hairstyle")
SYNTHETIC = dict(
    source="synthetic", synthetic_subjects=8, synthetic_sequences=2, synthetic_frames=3
)


def tiny_pack(config: MatcherConfig | DeidConfig) -> PackedFaces:
    """The synthetic pack a tiny config describes."""
    return open_faces(config.data, config.input_size, config.labels, config.seed)


def tiny_stream(config: DeidConfig):
    pack = tiny_pack(config)
    return batch_stream(pack, np.arange(pack.n_subjects), config)


def tiny_matcher_config(**overrides: object) -> MatcherConfig:
    data = DataConfig(**SYNTHETIC, holdout_fraction=0.25)
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
    data = DataConfig(**SYNTHETIC, holdout_fraction=0.0)
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
