"""The ``storage`` settings section: where uploads and results are kept
(:mod:`authority_service.clip_store`).

``kind: directory`` (the default) keeps them under ``data_dir`` (``uploads/``, ``results/``), a
directory the API and every worker share. ``kind: s3`` keeps them as objects in a bucket of an
S3-compatible store (AWS S3, MinIO), ``storage.s3`` saying which. Its access key id and secret are
never settings: they are the credentials ``s3-access-key-id`` and ``s3-secret-access-key`` (or
``$UUNET_AUTHORITY_S3_ACCESS_KEY_ID`` / ``$UUNET_AUTHORITY_S3_SECRET_ACCESS_KEY``), read by
:func:`authority_service.s3_store.open_s3_store`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from shared.config_base import StrictModel

__all__ = ["S3StorageSettings", "StorageSettings"]

# S3's bucket naming rules (the DNS-compatible subset every S3-compatible store accepts).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# A key prefix: path segments of safe characters, each followed by '/'.
_PREFIX = re.compile(r"([A-Za-z0-9_.-]+/)*")


class S3StorageSettings(StrictModel):
    """The bucket of ``storage.kind: s3``."""

    #: The bucket (it must exist: the authority never creates one; start-up checks it).
    bucket: str
    #: The store's URL, ``http(s)://HOST:PORT`` (MinIO: ``http://minio:9000``); unset: AWS S3.
    #: Never with credentials in it.
    endpoint_url: str | None = None
    region: str = Field("us-east-1", min_length=1, max_length=64)
    #: Put before every key (``uunet/`` -> ``uunet/uploads/<job>.clip``): empty, or path
    #: segments each ending in ``/``.
    prefix: str = ""
    #: ``path`` (``HOST/BUCKET/KEY``: MinIO and most self-hosted stores), ``virtual``
    #: (``BUCKET.HOST/KEY``) or ``auto`` (boto3 chooses).
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    #: CA bundle (PEM) that signs the endpoint's TLS certificate; unset: the system's.
    ca_bundle: Path | None = None
    #: Seconds to wait for a connection, and attempts of each request (boto3's "standard"
    #: retries, with back-off) before the operation fails (a job then fails
    #: ``storage_unavailable``).
    connect_timeout_s: float = Field(5.0, gt=0, le=300)
    max_attempts: int = Field(3, ge=1, le=20)

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        if not _BUCKET.fullmatch(value) or ".." in value:
            raise ValueError(
                "must be an S3 bucket name: 3-63 lowercase letters, digits, '.' or '-', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be http://HOST:PORT or https://HOST:PORT")
            if parts.username is not None or parts.password is not None:
                raise ValueError(
                    "must not hold credentials: give them as the credentials "
                    "s3-access-key-id and s3-secret-access-key"
                )
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError("must be only scheme, host and port (no path or query)")
        return value

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PREFIX.fullmatch(value) or any(s in (".", "..") for s in value.split("/")):
            raise ValueError(
                "must be empty or path segments (letters, digits, '_', '.', '-') each ending "
                "in '/', such as 'uunet/'"
            )
        return value


class StorageSettings(StrictModel):
    """Where uploads and results are kept (:mod:`authority_service.clip_store`)."""

    #: ``directory``: ``data_dir/uploads`` and ``data_dir/results``, shared by the API and every
    #: worker. ``s3``: the bucket ``s3`` names (install the ``s3`` extra, boto3).
    kind: Literal["directory", "s3"] = "directory"
    s3: S3StorageSettings | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> StorageSettings:
        if self.kind == "s3" and self.s3 is None:
            raise ValueError("storage.kind s3 needs storage.s3 (at least its bucket)")
        return self
