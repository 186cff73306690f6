"""The edge agent's settings: one strict pydantic model, from a YAML file and the environment.

Every key is documented in ``deploy/edge.example.yml``. Environment variables override the file:
``UUNET_EDGE_<SECTION>__<KEY>`` (``UUNET_EDGE_DETECTOR__MIN_FACE_SIZE=24``). Secrets are never
part of the settings: the camera's HMAC key comes from ``$UUNET_EDGE_CAMERA_KEY`` or
``$CREDENTIALS_DIRECTORY/camera-key`` (:func:`edge_agent.credentials.camera_key`).

A process can also run several cameras (``cameras:``, a map of camera entries, each with its
own source, outputs and privacy zones; ``edge_agent.multi_camera``): every other section is
then shared by all of them, and each camera's key is its own secret
(:func:`edge_agent.credentials.camera_key` with the camera's id). :func:`camera_settings`
gives the single-camera settings of one entry, which the single-camera agent runs unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from edge_agent.credentials import camera_key_env
from edge_agent.output_settings import OutputSettings
from shared.config_base import StrictModel, StrictSettings
from shared.detectors import DEFAULT_DETECTOR, DEFAULT_LOW_LIGHT_GAMMA, DetectorOptions
from shared.geometry import HEAD_MARGIN
from shared.ort_providers import GpuOptions
from shared.sealed_faces import MAX_RECIPIENTS
from shared.tracking import (
    DEFAULT_HOLD_GROWTH,
    DEFAULT_HOLD_VELOCITY,
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_MISSED,
)

__all__ = [
    "DEFAULT_MODEL_DIR",
    "CameraEntry",
    "EdgeSettings",
    "camera_settings",
]

DEFAULT_MODEL_DIR = Path("models/weights/default")

_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
PositiveFloat = Annotated[float, Field(gt=0)]


class CameraSettings(StrictModel):
    """Who this camera is (its id goes into every v1 ROI message)."""

    id: str = "camera-0"

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.fullmatch(value):
            raise ValueError("1-64 characters among letters, digits, '.', '_' and '-'")
        return value


class SourceSettings(StrictModel):
    """Where frames come from."""

    url: str | None = None
    realtime: bool = False
    fps: PositiveFloat | None = None
    queue_size: Annotated[int, Field(ge=1, le=1000)] = 4
    #: Decoder threads (0: FFmpeg's count, cores + 1); each holds frames (edge_agent/README.md).
    decode_threads: Annotated[int, Field(ge=0, le=64)] = 1
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    open_timeout_s: PositiveFloat = 10.0
    read_timeout_s: PositiveFloat = 10.0
    reconnect_initial_s: PositiveFloat = 0.5
    reconnect_max_s: PositiveFloat = 30.0
    #: A live source that has not delivered a frame ``open_timeout_s`` after the start ends
    #: the run (exit 3) instead of being retried for ever (``--exit-on-source-failure``).
    exit_on_failure: bool = False

    @model_validator(mode="after")
    def _check_backoff(self) -> SourceSettings:
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be >= reconnect_initial_s")
        return self


class DetectorSettings(StrictModel):
    """Which face detector plug-in, and how faces become head ROIs."""

    kind: str = DEFAULT_DETECTOR
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.6
    min_face_size: Annotated[int, Field(ge=1)] = 10
    nms_threshold: Annotated[float, Field(gt=0, le=1)] = 0.3
    # Large frames: with max_input_side set, frames above shrink_above_side get a shrunk pass
    # plus full-resolution regions and a rotating tile (shared.detectors.regions), never the
    # whole frame at full size. Measured at 1080p (edge_agent/README.md, bench/detectors.py
    # --covered, bench/edge.py): 1.2-2.3x faster detection, 130 MiB less peak RSS, but covered
    # recall 93.4 % against 99.8 % at full size. The detector's recall is the one leak left,
    # so full size (None) stays the default; 640 is the measured opt-in.
    max_input_side: Annotated[int, Field(ge=32)] | None = None
    full_res_regions: bool = True
    candidate_threshold: Annotated[float, Field(ge=0, le=1)] = 0.3
    region_face_side: Annotated[int, Field(ge=16)] | None = 128
    region_memory: Annotated[int, Field(ge=1)] = 5
    tile_grid: Annotated[int, Field(ge=0)] = 2
    region_seed_side: Annotated[int, Field(ge=1)] | None = 32
    shrink_above_side: Annotated[int, Field(ge=1)] | None = 1280
    low_light_gamma: Annotated[float, Field(gt=0, lt=1)] | None = DEFAULT_LOW_LIGHT_GAMMA
    # The low-light pass runs only on images whose mean luma is at most this (None: always).
    low_light_max_luma: Annotated[float, Field(ge=0, le=255)] | None = 100.0
    head_margin: Annotated[float, Field(ge=0, le=2)] = HEAD_MARGIN
    options: dict[str, Any] = Field(default_factory=dict)

    def detector_options(self) -> DetectorOptions:
        """The options every detector plug-in takes."""
        return DetectorOptions(
            score_threshold=self.score_threshold,
            min_face_size=self.min_face_size,
            nms_threshold=self.nms_threshold,
            max_input_side=self.max_input_side,
            low_light_gamma=self.low_light_gamma,
            low_light_max_luma=self.low_light_max_luma,
            full_res_regions=self.full_res_regions,
            candidate_threshold=self.candidate_threshold,
            region_face_side=self.region_face_side,
            region_memory=self.region_memory,
            tile_grid=self.tile_grid,
            region_seed_side=self.region_seed_side,
            shrink_above_side=self.shrink_above_side,
        )


class TrackerSettings(StrictModel):
    """The IoU tracker that keeps faces covered through missed detections."""

    iou_threshold: Annotated[float, Field(gt=0, lt=1)] = DEFAULT_IOU_THRESHOLD
    max_missed: Annotated[int, Field(ge=0, le=1000)] = DEFAULT_MAX_MISSED
    hold_growth: Annotated[float, Field(ge=0, le=1)] = DEFAULT_HOLD_GROWTH
    #: Held boxes move on at the track's velocity (``shared.tracking``).
    hold_velocity: bool = DEFAULT_HOLD_VELOCITY


class ZoneSettings(StrictModel):
    """A static privacy zone: a polygon of ``[x, y]`` fractions of the frame, always covered."""

    name: str = ""
    points: Annotated[
        list[tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]],
        Field(min_length=3),
    ]
    cover: Literal["black", "blur"] = "black"


class MarginSettings(StrictModel):
    """Safety margins against missed faces (``edge_agent.lookahead``, ``edge_agent.margins``).

    ``lookahead_frames``: frames wait this long before ``Ue`` so a face's first detection also
    covers the frames before it (latency: that many frames; 0: off). ``low_score_threshold``:
    detections from it up to ``detector.score_threshold`` are covered (``low_cover``), not
    reversibly replaced (``None``: off). ``zones``: privacy zones of this camera.
    ``detect_every``: the detector runs on every this many frames only, the frames between
    take boxes interpolated along the look-ahead's tracks (needs ``lookahead_frames`` at least
    ``detect_every - 1``; ``edge_agent/README.md`` has what it saves and what it covers).
    """

    lookahead_frames: Annotated[int, Field(ge=0, le=250)] = 5
    detect_every: Annotated[int, Field(ge=1, le=25)] = 1
    low_score_threshold: Annotated[float, Field(ge=0, le=1)] | None = 0.3
    low_cover: Literal["blur", "black"] = "blur"
    zones: list[ZoneSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_detect_every(self) -> MarginSettings:
        if self.detect_every > self.lookahead_frames + 1:
            raise ValueError(
                f"margins.detect_every {self.detect_every} needs margins.lookahead_frames >= "
                f"{self.detect_every - 1}: a frame the detector skips waits for the next "
                "detection frame's boxes"
            )
        return self


class GpuSettings(StrictModel):
    """How the CUDA and TensorRT providers run ``Ue`` (:class:`shared.onnx_runner.GpuOptions`).

    ``fp16``: TensorRT builds a half-precision engine. ``trt_engine_cache_dir``: TensorRT keeps
    its engines there across restarts (``None``: rebuilt at each start). ``trt_batch_*``: the
    face counts N of the one shape profile (max ``None``: ``model.max_batch``; opt ``None``: max),
    so a new face count never rebuilds an engine mid-stream.
    """

    device_id: Annotated[int, Field(ge=0)] = 0
    fp16: bool = False
    trt_engine_cache_dir: Path | None = None
    trt_batch_min: Annotated[int, Field(ge=1)] = 1
    trt_batch_opt: Annotated[int, Field(ge=1)] | None = None
    trt_batch_max: Annotated[int, Field(ge=1)] | None = None

    def gpu_options(self) -> GpuOptions:
        """The options :func:`shared.onnx_runner.provider_options` takes.

        Raises:
            ValueError: batch sizes out of order.
        """
        return GpuOptions(**self.model_dump())


class ModelSettings(StrictModel):
    """The exported UU-Net model directory (ue.onnx, card.json) and how to run it."""

    dir: Path = DEFAULT_MODEL_DIR
    providers: list[str] | Literal["auto"] = "auto"
    threads: Annotated[int, Field(ge=1)] | None = None
    max_batch: Annotated[int, Field(ge=1)] = 16
    gpu: GpuSettings = Field(default_factory=GpuSettings)

    @model_validator(mode="after")
    def _check_gpu(self) -> ModelSettings:
        self.gpu.gpu_options().batch_profile(self.max_batch)
        return self


class PrivacySettings(StrictModel):
    """What the model's card must show before the edge runs it (``edge_agent.model_check``).

    AUCs are those of the card's ``metrics.recognition`` (0.5: a recognizer links people no
    better than chance). The defaults refuse a model no better than round 1's; a deployment
    sets its own.
    """

    max_x_a_auc: Annotated[float, Field(ge=0.5, le=1.0)] = 0.75
    max_a_a_noise_auc: Annotated[float, Field(ge=0.5, le=1.0)] = 0.9
    #: Run a model whose decoder is public (card ``decoder_published: true``, or ``ud.onnx`` in
    #: the model directory): only for a demo, since anyone can then reverse the clips.
    allow_public_decoder: bool = False


class SealSettings(StrictModel):
    """The ROI message written into each frame's LSBs."""

    message_format: Literal["v1", "paper"] = "v1"


class SealedFacesSettings(StrictModel):
    """Each replaced face's original pixels, compressed and encrypted to the authority's public
    keys, carried in the frame's v1 ROI message (:mod:`edge_agent.face_sealing`). No recipient:
    off (the default). The edge holds public keys only: a private key file is refused."""

    recipients: Annotated[list[Path], Field(max_length=MAX_RECIPIENTS)] = Field(
        default_factory=list
    )
    codec: Literal["png", "jpeg", "webp"] = "png"
    quality: Annotated[int, Field(ge=1, le=100)] = 90
    sei: Literal["off", "jpeg", "png"] = "jpeg"
    sei_quality: Annotated[int, Field(ge=1, le=100)] = 95


class FailureSettings(StrictModel):
    """What happens to a frame whose faces could not be de-identified (never: pass it on)."""

    action: Literal["black", "drop"] = "black"


class MetricsSettings(StrictModel):
    """Prometheus ``/metrics`` and ``/healthz`` on a local port."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9108
    stale_after_s: PositiveFloat = 10.0


class CameraEntry(StrictModel):
    """One camera of a multi-camera process (``cameras.<name>``): its own source, outputs and
    privacy zones; ``id`` (default: the entry's name) goes into its v1 messages and labels its
    metrics. ``margins`` replaces the process's ``margins`` section for this camera (its zones
    are this camera's)."""

    id: str | None = None
    source: SourceSettings
    outputs: OutputSettings
    margins: MarginSettings | None = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str | None) -> str | None:
        if value is not None and not _ID_RE.fullmatch(value):
            raise ValueError("1-64 characters among letters, digits, '.', '_' and '-'")
        return value

    @model_validator(mode="after")
    def _check_camera(self) -> CameraEntry:
        if not self.source.url:
            raise ValueError("source.url: no source configured for this camera")
        if all(o is None for o in self.outputs.model_dump().values()):
            raise ValueError(
                "outputs: no output configured for this camera (evidence, rtsp, hls or lossy): "
                "every frame would be discarded"
            )
        return self


class EdgeSettings(StrictSettings):
    """All settings of one edge agent process."""

    model_config = SettingsConfigDict(
        env_prefix="UUNET_EDGE_", extra="forbid", env_nested_delimiter="__", frozen=True
    )

    camera: CameraSettings = Field(default_factory=CameraSettings)
    source: SourceSettings = Field(default_factory=SourceSettings)
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    tracker: TrackerSettings = Field(default_factory=TrackerSettings)
    margins: MarginSettings = Field(default_factory=MarginSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    seal: SealSettings = Field(default_factory=SealSettings)
    sealed_faces: SealedFacesSettings = Field(default_factory=SealedFacesSettings)
    failure: FailureSettings = Field(default_factory=FailureSettings)
    outputs: OutputSettings = Field(default_factory=OutputSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    #: Several cameras in this process (``edge_agent.multi_camera``); empty: one camera,
    #: ``camera``/``source``/``outputs`` above.
    cameras: dict[str, CameraEntry] = Field(default_factory=dict)
    max_frames: Annotated[int, Field(ge=1)] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _check_low_score(self) -> EdgeSettings:
        margins = {"margins": self.margins} | {
            f"cameras.{name}.margins": entry.margins
            for name, entry in self.cameras.items()
            if entry.margins is not None
        }
        for where, section in margins.items():
            low = section.low_score_threshold
            if low is not None and low >= self.detector.score_threshold:
                raise ValueError(
                    f"{where}.low_score_threshold must be below detector.score_threshold"
                )
        return self

    @model_validator(mode="after")
    def _check_cameras(self) -> EdgeSettings:
        if not self.cameras:
            return self
        single = [
            name
            for name, used in (
                ("camera", "camera" in self.model_fields_set),
                ("source", self.source.url is not None),
                ("outputs", any(o is not None for o in self.outputs.model_dump().values())),
            )
            if used
        ]
        if single:
            raise ValueError(
                f"cameras: set each camera's source and outputs in its entry; {', '.join(single)} "
                "at the top level belongs to a single-camera process"
            )
        ids: dict[str, str] = {}
        for name in self.cameras:
            if not _ID_RE.fullmatch(name):
                raise ValueError(
                    f"cameras: entry name {name!r}: 1-64 characters among letters, digits, "
                    "'.', '_' and '-'"
                )
            camera_id = self.cameras[name].id or name
            env = camera_key_env(camera_id)
            if env in ids:
                raise ValueError(
                    f"cameras: {ids[env]!r} and {name!r} share the camera id or key variable "
                    f"{env}: give each camera its own id"
                )
            ids[env] = name
        return self

    @model_validator(mode="after")
    def _check_sealed_faces(self) -> EdgeSettings:
        if self.sealed_faces.recipients and self.seal.message_format != "v1":
            raise ValueError(
                "sealed_faces.recipients needs seal.message_format v1: the paper's message has "
                "no place for sealed faces, and they are authenticated with the camera key"
            )
        return self


def camera_settings(settings: EdgeSettings, name: str) -> EdgeSettings:
    """The single-camera settings of the entry ``name`` of ``settings.cameras``: its id,
    source, outputs and margins over the process's shared sections; no metrics server (the
    multi-camera process serves one for all cameras).

    Raises:
        KeyError: no camera ``name``.
    """
    entry = settings.cameras[name]
    return settings.model_copy(
        update={
            "camera": CameraSettings(id=entry.id or name),
            "source": entry.source,
            "outputs": entry.outputs,
            "margins": entry.margins or settings.margins,
            "metrics": settings.metrics.model_copy(update={"enabled": False}),
            "cameras": {},
        }
    )
