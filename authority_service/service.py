"""The parts of a running authority, built once from its settings and secrets.

The HTTP app (:mod:`authority_service.api.app`) and the CLI (:mod:`authority_service.cli`) both
build a :class:`Services`; the CLI leaves out what it does not need (tokens, workers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from authority_service.audit import AuditEntry, AuditLog, AuditRecord
from authority_service.clip_store import open_clip_store
from authority_service.config import DEFAULT_DECODER_FILE, SHIPPED_DECODERS_DIR, AuthoritySettings
from authority_service.credentials import load_database_password
from authority_service.db import Database
from authority_service.decoders import DecoderRegistry
from authority_service.jobs import JobManager, JobStore
from authority_service.metrics import Metrics
from authority_service.previews import PreviewState
from authority_service.reconstruction import Reconstructor, message_sources
from authority_service.refusals import RefusalAggregator
from authority_service.sealed import SealedFaceOpener
from authority_service.security import LoginRateLimiter, TokenService
from authority_service.users import PasswordPolicy, SqlUserStore, UserStore
from shared.malloc_tuning import DAEMON_ARENAS, limit_arenas
from shared.private_files import private_dir
from shared.sealing_keys import SealingPrivateKey

__all__ = ["Services", "build_services", "default_model_dir", "shipped_default_decoder"]

log = logging.getLogger(__name__)


def shipped_default_decoder(decoders_dir: Path | None = None) -> Path | None:
    """The folder of the decoder that ``decoders_dir``'s ``DEFAULT`` file names (default: the
    shipped decoders), or ``None`` when there is no such file or folder (a checkout without
    shipped weights, a models folder without ``DEFAULT``).
    """
    decoders_dir = decoders_dir or SHIPPED_DECODERS_DIR
    try:
        model_id = (decoders_dir / DEFAULT_DECODER_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    directory = decoders_dir / model_id
    if model_id and (directory / "card.json").is_file():
        return directory
    log.warning(
        "%s names model %r, but %s holds no such model directory: no default decoder from it",
        decoders_dir / DEFAULT_DECODER_FILE,
        model_id,
        decoders_dir,
    )
    return None


def default_model_dir(settings: AuthoritySettings, override: Path | None = None) -> Path | None:
    """The decoder for paper-format messages: ``override``, the configured one, the one the
    ``DEFAULT`` file of ``models_dir`` names, or the shipped one (``shipped_default``)."""
    if override is not None:
        return override
    if settings.models.default_model_dir is not None:
        return settings.models.default_model_dir
    if settings.models.models_dir is not None:
        named = shipped_default_decoder(settings.models.models_dir)
        if named is not None:
            return named
    return shipped_default_decoder() if settings.models.shipped_default else None


@dataclass
class Services:
    """Everything a request handler or a CLI command works with."""

    settings: AuthoritySettings
    db: Database
    users: UserStore
    passwords: PasswordPolicy
    audit_log: AuditLog
    decoders: DecoderRegistry
    reconstructor: Reconstructor
    jobs: JobManager
    metrics: Metrics
    #: Append an entry to the audit log (raises if the write fails: callers fail closed).
    record: Callable[[AuditEntry], AuditRecord]
    #: Counts unauthenticated refusals into one record per client, action and window.
    refusals: RefusalAggregator
    tokens: TokenService | None = None
    login_limiter: LoginRateLimiter | None = None
    #: Locks of previews being made and when views were last audited (:mod:`.previews`).
    previews: PreviewState = field(default_factory=PreviewState)

    def close(self) -> None:
        self.refusals.close()  # their pending counts go to the log before it closes
        self.db.close()


def build_services(
    settings: AuthoritySettings,
    *,
    jwt_key: bytes | None = None,
    camera_keys: dict[str, bytes] | None = None,
    sealing_keys: dict[str, SealingPrivateKey] | None = None,
    model_override: Path | None = None,
) -> Services:
    """Open the database and model registry and wire the parts together (``sealing_keys``, by
    key id, open the faces cameras sealed; none: every face goes through Ud).

    Raises:
        authority_service.db.DatabaseError: the database cannot be opened.
        shared.model_dir.ModelDirError: the models directory or default model is invalid.
        shared.config_base.SecretNotFoundError: (``storage.kind: s3``) the bucket's access key
            is missing; :class:`~authority_service.clip_store.StoreUnavailableError`: boto3 is
            not installed. The store itself is checked by ``clips.check()``, not here.
    """
    # Before the decoders' and workers' threads exist: with glibc's default of 8 arenas per
    # core, arenas that short-lived job threads left behind held freed frame buffers, and the
    # resident memory climbed from job to job (shared.malloc_tuning).
    limit_arenas(DAEMON_ARENAS)
    private_dir(settings.data_dir)
    db = Database(settings.database_url, password=load_database_password(settings))
    metrics = Metrics()
    auth = settings.auth
    audit_log = AuditLog(db, settings.audit_anchor_path)
    decoders = DecoderRegistry(
        settings.models.models_dir,
        default_model_dir(settings, model_override),
        providers=settings.models.providers,
        threads=settings.models.threads,
        max_batch=settings.models.max_batch,
        archive_dirs=[SHIPPED_DECODERS_DIR] if settings.models.shipped_default else [],
    )

    def record(entry: AuditEntry) -> AuditRecord:
        appended = audit_log.append(entry)
        metrics.audit_records.labels(entry.outcome).inc()
        return appended

    dispatch = None
    if settings.jobs.queue == "celery":
        from authority_service.task_queue import celery_app, dispatcher

        dispatch = dispatcher(celery_app(settings))
    sealed = SealedFaceOpener(
        sealing_keys or {}, camera_keys, on_key_not_held=settings.sealing.on_key_not_held
    )
    reconstructor = Reconstructor(
        decoders,
        message_sources(
            camera_keys or {},
            require_authentication=settings.messages.require_authentication,
            sealed=sealed,
        ),
        max_batch=settings.models.max_batch,
        sealed=sealed,
    )
    services = Services(
        settings=settings,
        db=db,
        users=SqlUserStore(db),
        passwords=PasswordPolicy(
            min_length=auth.min_password_length,
            time_cost=auth.argon2_time_cost,
            memory_kib=auth.argon2_memory_kib,
            parallelism=auth.argon2_parallelism,
        ),
        audit_log=audit_log,
        decoders=decoders,
        reconstructor=reconstructor,
        jobs=JobManager(
            JobStore(db),
            reconstructor,
            record,
            settings.jobs,
            settings.uploads_dir,
            settings.results_dir,
            metrics,
            dispatch,
            clips=open_clip_store(settings),
        ),
        metrics=metrics,
        record=record,
        refusals=RefusalAggregator(
            record, settings.audit.refusal_window_s, settings.audit.refusal_max_sources
        ),
    )
    if jwt_key is not None:
        services.tokens = TokenService(jwt_key, auth.token_ttl_s, auth.issuer)
        services.login_limiter = LoginRateLimiter(
            auth.login_attempts_per_minute,
            auth.login_failures_per_user_per_minute,
            lockout_s=auth.login_lockout_s,
            lockout_max_s=auth.login_lockout_max_s,
        )
    return services
