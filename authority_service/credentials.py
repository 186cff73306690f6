"""The secrets the authority reads at start-up, next to its settings
(:mod:`authority_service.config`).

Secrets are never settings and never have defaults (:func:`load_secrets`); each is read from
the environment or from systemd's ``$CREDENTIALS_DIRECTORY``:

* the JWT signing key: ``$UUNET_AUTHORITY_JWT_SECRET`` or
  ``$CREDENTIALS_DIRECTORY/jwt-signing-key``;
  refused when shorter than 32 bytes, a known placeholder or low in entropy
  (:mod:`shared.secrets_check`, the check the edge applies to its camera key);
* one HMAC key per camera listed in ``messages.cameras``: ``$UUNET_CAMERA_KEY_<ID>`` (the id
  upper-cased, every character other than a letter or digit replaced by ``_``) or
  ``$CREDENTIALS_DIRECTORY/camera-key-<id>``;
* the sealing private keys named in ``sealing.private_keys`` (X25519, PEM; the public halves are
  on the cameras): ``$CREDENTIALS_DIRECTORY/<name>`` only, never the environment;
* the PostgreSQL password of ``database.url`` (optional: peer or certificate authentication
  needs none): ``$UUNET_AUTHORITY_DATABASE_PASSWORD`` or
  ``$CREDENTIALS_DIRECTORY/database-password`` (:func:`load_database_password`);
* the password of ``jobs.broker_url`` (optional): ``$UUNET_AUTHORITY_BROKER_PASSWORD`` or
  ``$CREDENTIALS_DIRECTORY/broker-password`` (:func:`authority_service.task_queue.broker_url`);
* with ``storage.kind: s3``, the bucket's access key id and secret:
  ``$UUNET_AUTHORITY_S3_ACCESS_KEY_ID`` / ``$UUNET_AUTHORITY_S3_SECRET_ACCESS_KEY`` or
  ``$CREDENTIALS_DIRECTORY/s3-access-key-id`` / ``s3-secret-access-key``
  (:func:`authority_service.s3_store.open_s3_store`).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from authority_service.config import AuthoritySettings
from shared.config_base import SecretNotFoundError, read_secret
from shared.roi_message import MIN_KEY_BYTES
from shared.sealing_keys import SealingPrivateKey, load_private_key
from shared.secrets_check import WeakSecretError, check_secret

__all__ = [
    "DATABASE_PASSWORD_ENV_VAR",
    "DATABASE_PASSWORD_NAME",
    "JWT_SECRET_ENV_VAR",
    "JWT_SECRET_NAME",
    "MIN_JWT_SECRET_BYTES",
    "AuthoritySecrets",
    "WeakSecretError",
    "camera_key_env_var",
    "load_camera_keys",
    "load_database_password",
    "load_sealing_keys",
    "load_secrets",
]

log = logging.getLogger(__name__)

JWT_SECRET_ENV_VAR = "UUNET_AUTHORITY_JWT_SECRET"
JWT_SECRET_NAME = "jwt-signing-key"
MIN_JWT_SECRET_BYTES = 32
DATABASE_PASSWORD_ENV_VAR = "UUNET_AUTHORITY_DATABASE_PASSWORD"
DATABASE_PASSWORD_NAME = "database-password"


def camera_key_env_var(camera_id: str) -> str:
    """The environment variable that holds ``camera_id``'s key: ``UUNET_CAMERA_KEY_<ID>``."""
    return "UUNET_CAMERA_KEY_" + re.sub(r"[^A-Za-z0-9]", "_", camera_id).upper()


@dataclass(frozen=True)
class AuthoritySecrets:
    """The secrets a serving authority holds (never logged, never in settings)."""

    jwt_key: bytes = field(repr=False)
    camera_keys: dict[str, bytes] = field(default_factory=dict, repr=False)
    #: Key id -> the sealing private key.
    sealing_keys: dict[str, SealingPrivateKey] = field(default_factory=dict, repr=False)


def load_camera_keys(settings: AuthoritySettings) -> dict[str, bytes]:
    """Read the key of every camera in ``messages.cameras``.

    Raises:
        shared.config_base.SecretNotFoundError: a camera's key is missing.
        WeakSecretError: a key is shorter than the v1 minimum (16 bytes), a placeholder or low
            in entropy (:func:`shared.secrets_check.check_secret`).
    """
    keys = {}
    for camera in settings.messages.cameras:
        key = read_secret(f"camera-key-{camera}", camera_key_env_var(camera))
        check_secret(f"camera-key-{camera}", key, MIN_KEY_BYTES)
        keys[camera] = key
    return keys


def load_sealing_keys(settings: AuthoritySettings) -> dict[str, SealingPrivateKey]:
    """Read the sealing private keys of ``sealing.private_keys`` from
    ``$CREDENTIALS_DIRECTORY``; log each one's key id (never the key).

    Raises:
        shared.config_base.SecretNotFoundError: ``$CREDENTIALS_DIRECTORY`` is not set, or lacks
            a named key.
        shared.sealing_keys.SealingKeyError: a file is not an X25519 private key.
    """
    names = settings.sealing.private_keys
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if names and not directory:
        raise SecretNotFoundError(
            f"sealing key {names[0]!r} not found: $CREDENTIALS_DIRECTORY is not set (the "
            "sealing private keys are read as credentials only)"
        )
    keys: dict[str, SealingPrivateKey] = {}
    for name in names:
        path = Path(directory or "") / name
        if not path.is_file():
            raise SecretNotFoundError(f"sealing key {name!r} not found in $CREDENTIALS_DIRECTORY")
        key = load_private_key(path)
        log.info("sealing key %s loaded (credential %s)", key.key_id, name)
        keys[key.key_id] = key
    return keys


def load_database_password(settings: AuthoritySettings) -> str | None:
    """The password of a PostgreSQL ``database.url``: ``$UUNET_AUTHORITY_DATABASE_PASSWORD`` or
    ``$CREDENTIALS_DIRECTORY/database-password``; ``None`` when neither is set (PostgreSQL then
    authenticates otherwise, or refuses) or the database is SQLite.
    """
    if not settings.database_url.startswith("postgresql"):
        return None
    try:
        return read_secret(DATABASE_PASSWORD_NAME, DATABASE_PASSWORD_ENV_VAR).decode("utf-8")
    except SecretNotFoundError:
        return None


def load_secrets(settings: AuthoritySettings) -> AuthoritySecrets:
    """Read the JWT signing key, the camera keys and the sealing keys; refuse missing or weak
    ones.

    Raises:
        shared.config_base.SecretNotFoundError: the JWT key, a camera key or a sealing key is
            missing/empty.
        WeakSecretError: a key is too short, a placeholder or low in entropy
            (:func:`shared.secrets_check.check_secret`).
        shared.sealing_keys.SealingKeyError: a sealing key file is not an X25519 private key.
    """
    try:
        jwt_key = read_secret(JWT_SECRET_NAME, JWT_SECRET_ENV_VAR)
    except SecretNotFoundError as exc:
        raise SecretNotFoundError(
            f"{exc}; the authority refuses to start without a JWT signing key"
        ) from exc
    check_secret(JWT_SECRET_NAME, jwt_key, MIN_JWT_SECRET_BYTES)
    return AuthoritySecrets(
        jwt_key=jwt_key,
        camera_keys=load_camera_keys(settings),
        sealing_keys=load_sealing_keys(settings),
    )
