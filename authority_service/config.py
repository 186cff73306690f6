"""Settings of the authority process.

Values come from a YAML file (``--config``, or ``$UUNET_AUTHORITY_CONFIG``) overridden by the
environment: ``UUNET_AUTHORITY_<FIELD>``, nested fields joined by ``__``
(``UUNET_AUTHORITY_JOBS__WORKERS=2``). Unknown keys are errors. Every key is documented in
``deploy/authority.example.yml``.

Secrets are never settings and never have defaults: :mod:`authority_service.credentials`
reads them.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from authority_service.db import parse_database_url
from authority_service.storage_settings import StorageSettings
from shared.config_base import (
    StrictModel,
    StrictSettings,
    load_settings,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_DECODER_FILE",
    "SHIPPED_DECODERS_DIR",
    "AuditSettings",
    "AuthSettings",
    "AuthoritySettings",
    "DatabaseSettings",
    "JobSettings",
    "LimitSettings",
    "MessageSettings",
    "ModelSettings",
    "SealingSettings",
    "ServerSettings",
    "StorageSettings",
    "load_authority_settings",
]

log = logging.getLogger(__name__)

CONFIG_ENV_VAR = "UUNET_AUTHORITY_CONFIG"
#: The decoders (authority packages: ``<model id>/ud.onnx`` + ``card.json``) of the shipped
#: default models, this one and earlier ones (``models/weights/decoders`` of the repository),
#: indexed with ``shipped_default`` so recordings made with any of them stay reversible.
SHIPPED_DECODERS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights" / "decoders"
#: The file in a decoders folder naming (by model id) the one that serves paper-format messages.
DEFAULT_DECODER_FILE = "DEFAULT"

_CAMERA_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # the v1 message grammar's camera id
_CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")  # a file name, no path


class ServerSettings(StrictModel):
    """Where ``uunet-authority serve`` listens."""

    host: str = "127.0.0.1"
    port: int = Field(8600, ge=1, le=65535)
    #: Client addresses (comma-separated) trusted to set ``X-Forwarded-For``/``-Proto``: the
    #: reverse proxy in front of the service. The login rate limit keys on the client address.
    #: Empty (the default): no proxy is trusted and the headers are ignored, so a local
    #: process cannot pick the address it is limited and audited under.
    forwarded_allow_ips: str = ""


class AuthSettings(StrictModel):
    """Tokens, password hashing and the login rate limit."""

    token_ttl_s: int = Field(900, ge=30, le=86_400)
    issuer: str = Field("uunet-authority", min_length=1)
    min_password_length: int = Field(12, ge=8, le=1024)
    #: argon2id cost; the defaults are argon2-cffi's (RFC 9106 "low memory" profile).
    argon2_time_cost: int = Field(3, ge=1, le=20)
    argon2_memory_kib: int = Field(65_536, ge=8, le=4_194_304)
    argon2_parallelism: int = Field(4, ge=1, le=64)
    #: Token requests allowed per client address per minute, and failed ones per user name from
    #: one client address (beyond that, that user is locked out at that address only).
    login_attempts_per_minute: int = Field(10, ge=1, le=10_000)
    login_failures_per_user_per_minute: int = Field(5, ge=1, le=10_000)

    # Login lockout back-off (see authority_service.security.LoginRateLimiter): the first
    # lockout of a (user name, client address) lasts login_lockout_s, each next one twice as
    # long, at most login_lockout_max_s; that long without a failure and the pair is forgotten.
    login_lockout_s: int = Field(60, ge=1, le=86_400)
    login_lockout_max_s: int = Field(3600, ge=1, le=7 * 86_400)

    @field_validator("login_lockout_max_s")
    @classmethod
    def _max_lockout_not_below_first(cls, value: int, info: ValidationInfo) -> int:
        first = info.data.get("login_lockout_s")
        if first is not None and value < first:
            raise ValueError(f"must be at least login_lockout_s ({first})")
        return value


class JobSettings(StrictModel):
    """The worker pool that runs clip reconstructions."""

    workers: int = Field(1, ge=1, le=32)
    #: Jobs waiting beyond the running ones; a submission past this gets 503.
    max_queued: int = Field(16, ge=1, le=10_000)
    #: Jobs, their uploads and results are deleted this long after submission.
    ttl_s: int = Field(86_400, ge=60, le=90 * 86_400)
    sweep_interval_s: float = Field(60.0, gt=0, le=3600)
    #: Lossless codec of reconstructed clips: H.264 RGB qp 0 in MP4 (.mp4; encodes 2.5-3x
    #: faster than FFV1 here, plays in VLC/ffplay; odd-sized clips fall back to FFV1) or FFV1
    #: in Matroska (.mkv).
    result_codec: Literal["libx264rgb", "ffv1"] = "libx264rgb"
    #: Dual control: every reversal (a clip job, or a frame, which then becomes a job too)
    #: waits ``pending_approval`` until a second user with the role ``approver`` approves it
    #: (:mod:`authority_service.approvals`). Off by default. Jobs pending when it is turned
    #: off still wait for a decision. The operator's ``uunet-authority reconstruct`` on the
    #: server is not subject to it: that is the audited break-glass path.
    require_approval: bool = False
    #: Worker processes that reverse one clip's segments side by side, each with its own Ud
    #: sessions (``models.threads`` threads each), joined into one result identical to one
    #: pass (:mod:`authority_service.parallel`). 1: the whole clip in one pass in the job's
    #: thread, as before.
    segment_workers: int = Field(1, ge=1, le=64)
    #: Frames per segment: a multiple of 16 (Ud's batch window); a clip of at most this many
    #: frames is reversed in one pass.
    segment_frames: int = Field(512, ge=16, le=1_000_000, multiple_of=16)
    #: Where jobs run: ``local``, on ``workers`` threads of the API process; ``celery``, in
    #: ``uunet-authority worker`` processes on any host sharing the database and ``data_dir``,
    #: sent through the broker ``broker_url`` (the API then only enqueues; ``workers`` unused).
    queue: Literal["local", "celery"] = "local"
    #: The Celery broker, ``redis://HOST:PORT/DB`` (``rediss://`` for TLS), never with a password
    #: (the credential ``broker-password``, or ``$UUNET_AUTHORITY_BROKER_PASSWORD``).
    broker_url: str | None = None
    #: A job message a worker has not acknowledged this long is delivered again (the worker's
    #: host is taken to be gone): make it longer than most jobs.
    visibility_timeout_s: int = Field(21_600, ge=2, le=7 * 86_400)
    #: A running job whose worker has not renewed its lease (every ``lease_s``/4) this long is
    #: taken to be lost, and run again from scratch by the worker its message reaches.
    lease_s: float = Field(60.0, ge=0.5, le=3600)
    #: Starts of a job: one that was started this many times, its worker lost each time, fails
    #: (``worker_lost``, audited) instead of starting again.
    max_attempts: int = Field(3, ge=1, le=100)
    #: With ``queue: celery``: a clip of more than ``segment_frames`` frames is split into
    #: segment tasks that any worker takes, joined into one result identical to one pass
    #: (:mod:`authority_service.segment_tasks`; the parts go through the shared ``data_dir``,
    #: or the S3 bucket: :mod:`authority_service.segment_parts`). A segment started
    #: ``max_attempts`` times, its worker lost each time, fails the job. False: a worker
    #: reverses the whole clip (in ``segment_workers`` processes).
    distribute_segments: bool = True

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("redis", "rediss") or not parts.hostname:
                raise ValueError("must be redis://HOST:PORT/DB or rediss://HOST:PORT/DB")
            if parts.password is not None:
                raise ValueError(
                    "must not hold a password: give it as the credential broker-password "
                    "(or $UUNET_AUTHORITY_BROKER_PASSWORD)"
                )
        return value

    @model_validator(mode="after")
    def _check_queue(self) -> JobSettings:
        if self.queue == "celery" and self.broker_url is None:
            raise ValueError("jobs.queue celery needs jobs.broker_url")
        if self.lease_s >= self.visibility_timeout_s:
            raise ValueError("jobs.lease_s must be shorter than jobs.visibility_timeout_s")
        return self


class LimitSettings(StrictModel):
    """Upload size limits (whole request body)."""

    max_clip_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    max_frame_bytes: int = Field(32 * 1024 * 1024, ge=1024)


class ModelSettings(StrictModel):
    """Where the decoders (Ud) are, and how ONNX Runtime runs them."""

    #: One sub-folder per model id, each an authority package (``ud.onnx`` + ``card.json``);
    #: an optional ``DEFAULT`` file names (by id) the decoder of paper-format messages.
    models_dir: Path | None = None
    #: Decoder for paper-format messages (they name no model); unset: the folder that the
    #: ``DEFAULT`` file of ``models_dir`` names (a model id), else the shipped default
    #: (``models/weights/decoders/<the id in its DEFAULT file>``) when it exists and
    #: ``shipped_default`` is true. Its model id is served for v1 messages too.
    #: ``shipped_default`` also indexes every shipped decoder (``models/weights/decoders``, this
    #: default's and earlier ones), so their recordings stay reversible.
    default_model_dir: Path | None = None
    shipped_default: bool = True
    providers: str | list[str] = "auto"
    threads: int | None = Field(None, ge=1, le=256)
    #: Faces per Ud call; a clip's faces are batched across frames up to this.
    max_batch: int = Field(32, ge=1, le=1024)


class MessageSettings(StrictModel):
    """How ROI messages are checked."""

    #: Cameras whose HMAC keys the authority holds (read as secrets at start-up). A v1 message
    #: of one of these cameras must verify (a bad tag is a forged message).
    cameras: list[str] = Field(default_factory=list)
    #: Refuse any message that cannot be verified: paper format, a camera without a key, or a
    #: message read from the SEI of a lossy stream (``unauthenticated_message``, 422). Only an
    #: explicit ``false`` reverses such messages, each frame then reported unverified (the
    #: job's ``unverified_frames``, the frame's ``X-Uunet-Verified``, the audit record).
    require_authentication: bool = True

    @field_validator("cameras")
    @classmethod
    def _check_ids(cls, value: list[str]) -> list[str]:
        for camera in value:
            if not _CAMERA_ID.fullmatch(camera):
                raise ValueError(
                    f"camera id {camera!r} must be 1-64 letters, digits, '.', '_' or '-'"
                )
        if len(set(value)) != len(value):
            raise ValueError("camera ids must be unique")
        return value


class SealingSettings(StrictModel):
    """The private keys that open the faces cameras sealed to the authority
    (:mod:`authority_service.sealed`)."""

    #: Credential file names (``$CREDENTIALS_DIRECTORY/<name>``, systemd ``LoadCredential=``),
    #: each an X25519 private key (``uunet-authority keys generate``). Several: rotation, a
    #: payload names the key id it needs. Empty: every face goes through Ud.
    private_keys: list[str] = Field(default_factory=list)
    #: A face sealed only to keys not held here: ``ud`` reverses it with Ud, ``error`` fails the
    #: clip (``sealing_key_not_held``, 422). Either way it is counted and audited.
    on_key_not_held: Literal["ud", "error"] = "ud"

    @field_validator("private_keys")
    @classmethod
    def _check_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _CREDENTIAL_NAME.fullmatch(name):
                raise ValueError(
                    f"credential name {name!r} must be a file name: 1-128 letters, digits, "
                    "'.', '_' or '-', not starting with '.'"
                )
        if len(set(value)) != len(value):
            raise ValueError("credential names must be unique")
        return value


class AuditSettings(StrictModel):
    """How refusals of unauthenticated requests reach the audit log
    (:mod:`authority_service.refusals`)."""

    #: Per client address, action and error code, the first refusal of a request without a
    #: valid token or login is recorded at once and the rest of this window counted into one
    #: record. 0: one record per refusal.
    refusal_window_s: float = Field(60.0, ge=0, le=3600)
    #: Windows tracked at once; refusals from further addresses share one window per action
    #: and code (client ``*``).
    refusal_max_sources: int = Field(1024, ge=1, le=1_000_000)


class DatabaseSettings(StrictModel):
    """Where users, the audit log and jobs are kept (:mod:`authority_service.db`)."""

    #: ``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DBNAME`` (psycopg 3), never with a
    #: password (:func:`load_database_password`). Unset: the SQLite file
    #: ``DATA_DIR/authority.sqlite3``.
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_database_url(value)
        return value


class AuthoritySettings(StrictSettings):
    """Everything ``uunet-authority`` reads from its configuration."""

    model_config = SettingsConfigDict(env_prefix="UUNET_AUTHORITY_")

    #: SQLite database, uploads and results live here (created if missing); with
    #: ``storage.kind: s3`` uploads and results are in the bucket instead.
    data_dir: Path
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    jobs: JobSettings = JobSettings()
    limits: LimitSettings = LimitSettings()
    models: ModelSettings = ModelSettings()
    messages: MessageSettings = MessageSettings()
    sealing: SealingSettings = SealingSettings()
    audit: AuditSettings = AuditSettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def database_path(self) -> Path:
        """The default SQLite file (used unless ``database.url`` is set)."""
        return self.data_dir / "authority.sqlite3"

    @property
    def database_url(self) -> str:
        """``database.url``, else the URL of :attr:`database_path`."""
        return self.database.url or f"sqlite:///{self.database_path}"

    @property
    def audit_anchor_path(self) -> Path:
        return self.data_dir / "audit-head.json"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"


def load_authority_settings(path: str | Path | None = None) -> AuthoritySettings:
    """Load settings from ``path`` (or ``$UUNET_AUTHORITY_CONFIG``) and the environment.

    Raises:
        shared.config_base.ConfigError: unreadable file or invalid values (each with its key).
    """
    if path is None:
        path = os.environ.get(CONFIG_ENV_VAR) or None
    return load_settings(AuthoritySettings, path)
