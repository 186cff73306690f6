"""What the evaluation suite measures and how much of it (no heavy import here, so a CLI can
build its parser without loading the instruments)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from models.evaluation.baselines import DEFAULT_BASELINES

__all__ = ["DEFAULT_FEATHERS", "DEFAULT_ROI_SIZES", "SECTIONS", "SuiteConfig"]

#: ROI sizes (pixels) at which reversal fidelity is measured.
DEFAULT_ROI_SIZES = (32, 48, 64, 96, 128)

SECTIONS = ("faces", "detection", "video", "feather")

#: Feathers of the feather sweep (fraction of the ROI's smaller side).
DEFAULT_FEATHERS = (0.0, 0.04, 0.08, 0.12, 0.16)


@dataclass
class SuiteConfig:
    """What to measure and how much of it (the caps keep a run within minutes on 2 cores)."""

    media: Path
    model: Path
    out: Path
    sections: tuple[str, ...] = SECTIONS
    recognizers: tuple[str, ...] = ("sface", "dlib")
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    identity_dirs: tuple[Path, ...] = ()
    max_identities: int = 20
    max_per_identity: int = 5
    roi_sizes: tuple[int, ...] = DEFAULT_ROI_SIZES
    max_frames: int = 150
    crfs: tuple[int, ...] = (18, 23, 28)
    feathers: tuple[float, ...] = DEFAULT_FEATHERS
    max_impostors: int = 100_000
    threads: int = 1
    seed: int = 0
    skipped: list[str] = field(default_factory=list)
