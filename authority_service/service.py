"""The parts of a running authority, built once from its settings and secrets.

The HTTP app (:mod:`authority_service.api.app`) and the CLI (:mod:`authority_service.cli`) both
build a :class:`Services`; the CLI leaves out what it does not need (tokens, workers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from authority_service.audit import AuditEntry, AuditLog, AuditRecord
from authority_service.config import (
    SHIPPED_ARCHIVE_DIR,
    SHIPPED_DEFAULT_MODEL_DIR,
    AuthoritySettings,
)
from authority_service.db import Database
from authority_service.decoders import DecoderRegistry
from authority_service.jobs import JobManager, JobStore
from authority_service.metrics import Metrics
from authority_service.reconstruction import Reconstructor, message_sources
from authority_service.security import LoginRateLimiter, TokenService
from authority_service.users import PasswordPolicy, SqliteUserStore, UserStore

__all__ = ["Services", "build_services", "default_model_dir"]

log = logging.getLogger(__name__)


def default_model_dir(settings: AuthoritySettings, override: Path | None = None) -> Path | None:
    """The decoder for paper-format messages: ``override``, the configured one, or the shipped."""
    if override is not None:
        return override
    if settings.models.default_model_dir is not None:
        return settings.models.default_model_dir
    if settings.models.shipped_default and (SHIPPED_DEFAULT_MODEL_DIR / "card.json").is_file():
        return SHIPPED_DEFAULT_MODEL_DIR
    return None


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
    tokens: TokenService | None = None
    login_limiter: LoginRateLimiter | None = None

    def close(self) -> None:
        self.db.close()


def build_services(
    settings: AuthoritySettings,
    *,
    jwt_key: bytes | None = None,
    camera_keys: dict[str, bytes] | None = None,
    model_override: Path | None = None,
) -> Services:
    """Open the database and model registry and wire the parts together.

    Raises:
        authority_service.db.DatabaseError: the database cannot be opened.
        shared.model_dir.ModelDirError: the models directory or default model is invalid.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_path)
    metrics = Metrics()
    auth = settings.auth
    audit_log = AuditLog(db, settings.audit_anchor_path)
    decoders = DecoderRegistry(
        settings.models.models_dir,
        default_model_dir(settings, model_override),
        providers=settings.models.providers,
        threads=settings.models.threads,
        max_batch=settings.models.max_batch,
        archive_dirs=[SHIPPED_ARCHIVE_DIR] if settings.models.shipped_default else [],
    )

    def record(entry: AuditEntry) -> AuditRecord:
        appended = audit_log.append(entry)
        metrics.audit_records.labels(entry.outcome).inc()
        return appended

    reconstructor = Reconstructor(
        decoders,
        message_sources(
            camera_keys or {}, require_authentication=settings.messages.require_authentication
        ),
        max_batch=settings.models.max_batch,
    )
    services = Services(
        settings=settings,
        db=db,
        users=SqliteUserStore(db),
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
        ),
        metrics=metrics,
        record=record,
    )
    if jwt_key is not None:
        services.tokens = TokenService(jwt_key, auth.token_ttl_s, auth.issuer)
        services.login_limiter = LoginRateLimiter(
            auth.login_attempts_per_minute, auth.login_failures_per_user_per_minute
        )
    return services
