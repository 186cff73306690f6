"""Training configuration: strict pydantic models, saved as ``config.yml`` beside every run.

A run directory holds ``config.yml`` (what was asked), ``checkpoint.pt`` (resumable state),
``history.jsonl`` (logged losses), ``curves.png`` and ``samples_<step>.png``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from models.losses import check_s_vector
from shared.compositing import Composition
from shared.config_base import ConfigError, StrictModel, describe_validation_error

__all__ = [
    "CompositionConfig",
    "DataConfig",
    "DeidConfig",
    "LossWeights",
    "MatcherConfig",
    "NetworkConfig",
    "RoiChannelConfig",
    "load_config",
    "save_config",
]

DEFAULT_LABELS = ("id", "gender", "ethnicity", "hairstyle")


class DataConfig(StrictModel):
    """Where the training faces come from: a packed file (``uunet-train pack``) or synthetic."""

    source: Literal["packed", "synthetic"] = "packed"
    packed: Path | None = None
    holdout_fraction: float = Field(0.05, ge=0.0, lt=0.5)
    synthetic_subjects: int = Field(64, ge=2)
    synthetic_sequences: int = Field(3, ge=1)
    synthetic_frames: int = Field(4, ge=1)
    jitter: bool = True
    subject_policy: Literal["skip", "repeat"] = "skip"

    @model_validator(mode="after")
    def _packed_needs_path(self) -> DataConfig:
        if self.source == "packed" and self.packed is None:
            raise ValueError("data.packed (a file made by `uunet-train pack`) is required")
        return self


class NetworkConfig(StrictModel):
    """Architectures by factory name and width."""

    unet: str = "unet"
    unet_width: int = Field(32, ge=1)
    unet_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    unet_norm: Literal["group", "batch", "instance"] = "group"
    unet_max_multiplier: int = Field(8, ge=1)
    unet_noise_code: int = Field(0, ge=0)
    critic: str = "patchgan"
    critic_width: int = Field(32, ge=1)
    critic_layers: int = Field(3, ge=1, le=5)
    critic_spectral_norm: bool = False
    critic_scales: int = Field(2, ge=1, le=4)
    matcher: str = "table1"

    @model_validator(mode="after")
    def _check_noise_code(self) -> NetworkConfig:
        if self.unet_noise_code and (
            self.unet_noise_code < 4
            or math.isqrt(self.unet_noise_code) ** 2 != self.unet_noise_code
        ):
            raise ValueError(
                f"unet_noise_code must be 0 or a square >= 4, got {self.unet_noise_code}"
            )
        return self


class LossWeights(StrictModel):
    """The paper's weights (mse 50, every other term 1) and the terms beyond the paper (0 = off):
    ``ring`` (background ring carried through), ``hf`` (high-frequency energy of luma and chroma
    like a real face's), ``ndiv`` (two noise planes give two identities), ``layout`` (pose,
    lighting and layout kept at ``layout_grid``), ``idx`` / ``idn`` (a real recognizer's
    embedding, ``identity_embedder``: ``a`` far from ``x``, ``Ue(x, n1)`` far from
    ``Ue(x, n2)``), ``idt`` (that embedding pulled toward the person the noise plane names:
    ``models.identity_targets``), ``anchor`` (``a`` kept at the surrogate of ``init_from``'s
    frozen ``Ue`` below ``anchor_sigma``: ``losses.anchor_loss``)."""

    mse: float = 50.0
    adv: float = 1.0
    ano: float = 1.0
    con: float = 1.0
    div: float = 1.0
    dis: float = 1.0
    ring: float = Field(0.0, ge=0.0)
    hf: float = Field(0.0, ge=0.0)
    ndiv: float = Field(0.0, ge=0.0)
    layout: float = Field(0.0, ge=0.0)
    idx: float = Field(0.0, ge=0.0)
    idn: float = Field(0.0, ge=0.0)
    idt: float = Field(0.0, ge=0.0)
    anchor: float = Field(0.0, ge=0.0)


class InitFromConfig(StrictModel):
    """Exported networks a new run starts from instead of random weights
    (``models.onnx_import``; the critic and the optimisers start fresh). A Ue with a noise
    code the export lacks starts with neutral style layers (it computes what the export
    does until training teaches it to read its noise)."""

    ue: Path
    ud: Path | None = None  # None: Ud starts from random weights


class CompositionConfig(StrictModel):
    """How the model's output enters the frame (``shared.compositing``; written to the card)."""

    resample: Literal["smooth", "replicate"] = "smooth"
    feather: float = Field(0.08, ge=0.0, le=0.5)
    sizes: tuple[int, ...] | None = None  # default: (input_size,)
    ring: float = Field(0.12, gt=0.0, lt=0.5)
    size_weights: tuple[float, ...] | None = None

    @model_validator(mode="after")
    def _check_sizes(self) -> CompositionConfig:
        if self.sizes is not None and (
            not self.sizes or list(self.sizes) != sorted(set(self.sizes))
        ):
            raise ValueError(f"sizes must be ascending and distinct, got {list(self.sizes)}")
        if self.size_weights is not None and (
            self.sizes is None
            or len(self.size_weights) != len(self.sizes)
            or min(self.size_weights) < 0
        ):
            raise ValueError("size_weights needs sizes and one non-negative weight per size")
        return self

    def composition(self, input_size: int) -> Composition:
        """The ``shared.compositing.Composition`` the card will state."""
        return Composition(self.resample, self.feather, tuple(self.sizes or (input_size,)))


class RoiChannelConfig(StrictModel):
    """The simulated paste/crop between Ue and Ud (``models.roi_channel``)."""

    enabled: bool = True
    min_size: int = Field(20, ge=4)
    max_size: int = Field(320, ge=4)
    groups: int = Field(4, ge=1)
    lsb_flip_prob: float = Field(0.01, ge=0.0, le=1.0)
    noise_std: float = Field(0.0, ge=0.0)
    identity_prob: float = Field(0.1, ge=0.0, le=1.0)
    feather_min: float = Field(0.04, ge=0.0, le=0.5)
    feather_max: float = Field(0.16, ge=0.0, le=0.5)


class MatcherConfig(StrictModel):
    """Learning I: the pairwise attribute matcher Da."""

    labels: tuple[str, ...] = DEFAULT_LABELS
    input_size: int = 64
    data: DataConfig
    network: NetworkConfig = NetworkConfig()
    steps: int = Field(3000, ge=1)
    batch_pairs: int = Field(128, ge=2)
    positive_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    lr: float = Field(1e-3, gt=0.0)
    seed: int = 0
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(500, ge=1)
    eval_pairs: int = Field(2000, ge=10)


class DeidConfig(StrictModel):
    """Learning II: Ue, Ud and the critic Df against the frozen Da."""

    labels: tuple[str, ...] = DEFAULT_LABELS
    s: tuple[int, ...] = (-1, 1, 1, 0)
    input_size: int = 64
    matcher_run: Path | None = None
    #: Start a new run from exported weights (ignored when the run resumes its checkpoint).
    init_from: InitFromConfig | None = None
    data: DataConfig
    network: NetworkConfig = NetworkConfig()
    weights: LossWeights = LossWeights()
    composition: CompositionConfig = CompositionConfig()
    roi_channel: RoiChannelConfig = RoiChannelConfig()
    subjects_per_batch: int = Field(4, ge=1)
    sequences_per_subject: int = Field(2, ge=1)
    frames_per_sequence: int = Field(4, ge=1)
    steps: int = Field(20000, ge=1)
    critic_steps: int = Field(1, ge=1)
    gp_weight: float = Field(10.0, ge=0.0)
    gp_target: float = Field(1.0, gt=0.0)
    lr_generator: float = Field(2e-4, gt=0.0)
    lr_critic: float = Field(1e-4, gt=0.0)
    histogram_bins: int = Field(16, ge=2)
    hf_chroma_weight: float = Field(2.0, ge=0.0)
    #: ``hf``: "match" asks a's luma and chroma high-frequency energy to equal x's (squared
    #: log ratio); "band" only keeps their ratios inside a band (luma in ``hf_luma_band``,
    #: chroma at most ``hf_chroma_max``), so a blurred face plus a fine grid meets it no better
    #: than the face itself (``losses.high_frequency_band_loss``).
    hf_mode: Literal["match", "band"] = "match"
    hf_luma_band: tuple[float, float] = (0.7, 1.5)
    hf_chroma_max: float = Field(2.0, gt=0.0)
    #: ``anchor``: the Gaussian blur (px at each model size's own scale of ``input_size``)
    #: under which ``a`` must stay the frozen ``init_from.ue``'s surrogate.
    anchor_sigma: float = Field(1.5, gt=0.0)
    layout_grid: int = Field(8, ge=1)
    #: A frozen recognizer for ``idx``/``idn`` (``models.networks.identity``); it stops being an
    #: independent judge of the model (the card says so).
    identity_embedder: Literal["none", "sface"] = "none"
    identity_every: int = Field(4, ge=1)  # steps between two identity terms (they are costly)
    identity_faces: int = Field(8, ge=1)  # sequences per identity term
    identity_margin: float = Field(0.1, ge=-1.0, le=1.0)
    #: Identity terms through one random view per face (``identity.random_views``: jitter and
    #: down-up resampling shared by both faces of a pair), so a texture cannot meet them.
    identity_views: Literal["sharp", "random"] = "sharp"
    #: ``idt``: principal directions of the real faces' embeddings the noise latent spans, and
    #: how many training faces fit them (``models.identity_targets``).
    identity_target_components: int = Field(16, ge=1)
    identity_target_faces: int = Field(512, ge=2)
    div_labels: Literal["changed", "all"] = "changed"
    max_pairs: int | None = Field(32, ge=1)
    warmup_steps: int = Field(0, ge=0)
    decoder_only_steps: int = Field(0, ge=0)
    seed: int = 0
    log_every: int = Field(25, ge=1)
    checkpoint_every: int = Field(250, ge=1)

    @model_validator(mode="after")
    def _check_s(self) -> DeidConfig:
        check_s_vector(self.s, self.labels)
        if self.decoder_only_steps > self.steps:
            raise ValueError("decoder_only_steps must not exceed steps")
        if self.decoder_only_steps == self.steps and self.init_from is None:
            raise ValueError(
                "decoder_only_steps equals steps: Ue is never trained, so init_from.ue must "
                "name the exported Ue that Ud learns to invert"
            )
        if self.weights.idt:
            if self.identity_embedder == "none":
                raise ValueError("weights.idt needs an identity_embedder")
            if self.identity_target_components > self.network.unet_noise_code:
                raise ValueError(
                    f"weights.idt: identity_target_components "
                    f"({self.identity_target_components}) must not exceed "
                    f"network.unet_noise_code ({self.network.unet_noise_code}): the targets are "
                    "spanned by the noise latent"
                )
            if self.identity_target_faces < 2 * self.identity_target_components:
                raise ValueError(
                    "identity_target_faces must be at least twice identity_target_components"
                )
        if self.weights.anchor and self.init_from is None:
            raise ValueError("weights.anchor needs init_from.ue (the frozen Ue it anchors to)")
        low, high = self.hf_luma_band
        if not 0 < low < high:
            raise ValueError(f"hf_luma_band must be 0 < low < high, got {self.hf_luma_band}")
        sizes = self.model_sizes
        if sizes[0] != self.input_size:
            raise ValueError(
                f"composition.sizes {list(sizes)} must start with input_size {self.input_size}"
            )
        step = 2 ** round(math.log2(self.input_size))
        if any(size % step for size in sizes):
            raise ValueError(f"composition.sizes must be multiples of {step} (the U-Net depth)")
        return self

    @property
    def model_sizes(self) -> tuple[int, ...]:
        """The square sizes the model is trained and run at (``input_size`` first)."""
        return tuple(self.composition.sizes or (self.input_size,))

    @property
    def needs_matcher(self) -> bool:
        """Whether training reads Da: a joint step with a Da term (ano, con, div, ndiv)."""
        w = self.weights
        joint = self.decoder_only_steps < self.steps
        return joint and any((w.ano, w.con, w.div, w.ndiv))

    @property
    def batch_size(self) -> int:
        return self.subjects_per_batch * self.sequences_per_subject * self.frames_per_sequence


def save_config(config: StrictModel, path: Path) -> None:
    """Write ``config`` as YAML (paths as strings, aliases not used)."""
    data = config.model_dump(mode="json")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def load_config(cls: type[StrictModel], path: Path, **overrides: object) -> StrictModel:
    """Read a YAML config; ``overrides`` (dotted keys, e.g. ``{"data.packed": p}``) win.

    Raises:
        shared.config_base.ConfigError: unreadable file or invalid values (named by key path).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["(top level): expected a mapping"])
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return validate_config(cls, data, str(path))


def validate_config(cls: type[StrictModel], data: dict, source: str) -> StrictModel:
    """Validate a mapping as ``cls``; errors name their key paths.

    Raises:
        shared.config_base.ConfigError: invalid values.
    """
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe_validation_error(exc)) from exc
