"""``storage.kind: s3``: uploads and results as objects of an S3-compatible bucket (AWS S3,
MinIO), through boto3 (the ``s3`` extra). What the API and a worker keep locally, and when it
goes, is :mod:`authority_service.clip_store`'s.

The access key id and secret are secrets, never settings: the credentials
``s3-access-key-id`` and ``s3-secret-access-key`` (``$CREDENTIALS_DIRECTORY``, systemd
``LoadCredential=``, compose secrets), or ``$UUNET_AUTHORITY_S3_ACCESS_KEY_ID`` and
``$UUNET_AUTHORITY_S3_SECRET_ACCESS_KEY``. boto3's own search for credentials (``~/.aws``,
``$AWS_*``, instance metadata) is not used.

Errors name what is wrong: the bucket does not exist, the endpoint refused the credentials (or
their permissions), the endpoint cannot be reached (:meth:`S3ClipStore.check` at start-up, and
every operation; each also logged).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from authority_service.clip_store import (
    CHUNK_BYTES,
    RESULTS,
    ClipStore,
    ClipStoreError,
    ObjectMissingError,
    StoredObject,
    StoreUnavailableError,
    describe,
    remove_local,
    split_key,
    upload_key,
)
from authority_service.storage_settings import S3StorageSettings
from shared.config_base import read_secret
from shared.private_files import open_private, private_dir

if TYPE_CHECKING:
    from authority_service.config import AuthoritySettings

__all__ = [
    "ACCESS_KEY_ID_ENV_VAR",
    "ACCESS_KEY_ID_NAME",
    "SECRET_ACCESS_KEY_ENV_VAR",
    "SECRET_ACCESS_KEY_NAME",
    "S3ClipStore",
    "open_s3_store",
]

log = logging.getLogger(__name__)

ACCESS_KEY_ID_NAME = "s3-access-key-id"
ACCESS_KEY_ID_ENV_VAR = "UUNET_AUTHORITY_S3_ACCESS_KEY_ID"
SECRET_ACCESS_KEY_NAME = "s3-secret-access-key"
SECRET_ACCESS_KEY_ENV_VAR = "UUNET_AUTHORITY_S3_SECRET_ACCESS_KEY"
#: The object :meth:`S3ClipStore.check` writes and deletes (under the prefix).
CHECK_KEY = ".uunet-storage-check"
_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "403",
}
#: What boto3 raises (local file errors, ``OSError``, are left to propagate).
_BOTO_ERRORS = (BotoCoreError, ClientError, Boto3Error)
_UNAVAILABLE_DETAIL = "the clip store cannot be used now; the service log says why"


def open_s3_store(settings: AuthoritySettings) -> S3ClipStore:
    """The store of ``settings.storage.s3``, its credentials read (module docstring).

    Raises:
        shared.config_base.SecretNotFoundError: the access key id or secret is missing.
    """
    assert settings.storage.s3 is not None  # StorageSettings refuses kind s3 without it
    key_id = read_secret(ACCESS_KEY_ID_NAME, ACCESS_KEY_ID_ENV_VAR).decode("utf-8")
    secret = read_secret(SECRET_ACCESS_KEY_NAME, SECRET_ACCESS_KEY_ENV_VAR).decode("utf-8")
    return S3ClipStore(settings.storage.s3, settings.data_dir, key_id, secret)


class S3ClipStore(ClipStore):
    """Objects ``<prefix><key>`` of one bucket; local files under ``data_dir/scratch`` (a job's
    working files) and ``data_dir/results`` (the previews' cache)."""

    kind = "s3"

    def __init__(
        self, settings: S3StorageSettings, data_dir: Path, access_key_id: str, secret: str
    ) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.endpoint = settings.endpoint_url or f"AWS S3 ({settings.region})"
        self.work_dir = private_dir(data_dir / "scratch")
        self.cache_dir = private_dir(data_dir / "results")
        self._transfer = TransferConfig(multipart_chunksize=16 * CHUNK_BYTES, max_concurrency=4)
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret,
            verify=str(settings.ca_bundle) if settings.ca_bundle else None,
            config=Config(
                s3={"addressing_style": settings.addressing_style},
                signature_version="s3v4",
                connect_timeout=settings.connect_timeout_s,
                read_timeout=60,
                retries={"max_attempts": settings.max_attempts, "mode": "standard"},
            ),
        )

    # ---------------------------------------------------------------- names and errors
    def _name(self, key: str) -> str:
        split_key(key)
        return self.settings.prefix + key

    def describe_location(self) -> str:
        return f"s3://{self.bucket}/{self.settings.prefix} at {self.endpoint}"

    def _error(self, exc: BaseException, action: str, key: str | None = None) -> ClipStoreError:
        """``exc`` (boto3's) as what it means for the store, logged."""
        cause = exc
        if not isinstance(cause, ClientError) and isinstance(exc.__context__, ClientError):
            cause = exc.__context__  # boto3's S3UploadFailedError wraps the ClientError
        error: ClipStoreError
        if isinstance(cause, ClientError):
            code = str(cause.response.get("Error", {}).get("Code", ""))
            status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket" or (key is None and status == 404):
                message = f"the bucket {self.bucket!r} does not exist at {self.endpoint}"
                error = StoreUnavailableError(message, _UNAVAILABLE_DETAIL)
            elif key is not None and (code in ("NoSuchKey", "404") or status == 404):
                message = f"{self.describe_location()} holds no object {self._name(key)!r}"
                error = ObjectMissingError(message, f"{describe(key)} is missing")
            elif code in _AUTH_CODES or status == 403:
                message = (
                    f"{self.endpoint} refused access to the bucket {self.bucket!r} ({code}): "
                    f"check the credentials {ACCESS_KEY_ID_NAME} and {SECRET_ACCESS_KEY_NAME} "
                    "(or $UUNET_AUTHORITY_S3_*) and what they may do in the bucket"
                )
                error = StoreUnavailableError(message, _UNAVAILABLE_DETAIL)
            else:
                message = f"{self.describe_location()}: {action} failed: {cause}"
                error = StoreUnavailableError(message, _UNAVAILABLE_DETAIL)
        elif isinstance(cause, BotoConnectionError):
            message = f"cannot reach the S3 endpoint {self.endpoint}: {cause}"
            error = StoreUnavailableError(message, _UNAVAILABLE_DETAIL)
        else:
            message = f"{self.describe_location()}: {action} failed: {cause}"
            error = StoreUnavailableError(message, _UNAVAILABLE_DETAIL)
        level = logging.WARNING if isinstance(error, ObjectMissingError) else logging.ERROR
        log.log(level, "clip store: %s", message)
        return error

    # ---------------------------------------------------------------- the interface
    def incoming_path(self, key: str) -> Path:
        return self.work_dir / split_key(key)[1]

    def put(self, local: Path, key: str) -> None:
        try:
            with local.open("rb") as source:
                self._client.upload_fileobj(
                    source, self.bucket, self._name(key), Config=self._transfer
                )
        except _BOTO_ERRORS as exc:
            raise self._error(exc, f"storing {key}", None) from exc
        local.unlink(missing_ok=True)

    def fetch(self, key: str, destination: Path) -> None:
        try:
            # GET, not boto3's download (a HEAD first): a HEAD's 404 cannot tell a missing
            # bucket from a missing key.
            stored = self.open(key)
            with open_private(destination, "wb") as out:  # 0600: a clip of someone's faces
                for chunk in stored.chunks:
                    out.write(chunk)
        except BaseException as exc:  # no partial copy is left, whatever stopped it
            destination.unlink(missing_ok=True)
            if isinstance(exc, _BOTO_ERRORS):  # the body broke off
                raise self._error(exc, f"reading {key}", key) from exc
            raise

    def open(self, key: str) -> StoredObject:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._name(key))
        except _BOTO_ERRORS as exc:
            raise self._error(exc, f"reading {key}", key) from exc
        body = response["Body"]

        def chunks() -> Any:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            finally:
                body.close()

        return StoredObject(int(response["ContentLength"]), chunks(), body.close)

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._name(key))
        except _BOTO_ERRORS as exc:
            error = self._error(exc, f"looking up {key}", key)
            if isinstance(error, ObjectMissingError):
                return False
            raise error from exc
        return True

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except _BOTO_ERRORS as exc:
            raise self._error(exc, f"deleting {key}") from exc

    def delete_job(self, job_id: str) -> None:
        self.delete(upload_key(job_id))
        prefix = self._name(f"{RESULTS}/{job_id}.x")[:-1]  # results/<job id>.
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    self._client.delete_object(Bucket=self.bucket, Key=item["Key"])
        except _BOTO_ERRORS as exc:
            raise self._error(exc, f"deleting the results of job {job_id}") from exc
        remove_local(self.cache_dir.glob(f"{job_id}.*"))
        self.release_job_files(job_id)

    def local_copy(self, key: str) -> Path:
        destination = self.work_dir / split_key(key)[1]
        self.fetch(key, destination)
        return destination

    def cached(self, key: str) -> Path:
        path = self.cache_dir / split_key(key)[1]
        if path.is_file():
            return path
        handle, name = tempfile.mkstemp(dir=self.cache_dir, prefix=".fetch-")  # 0600
        os.close(handle)
        partial = Path(name)
        try:
            self.fetch(key, partial)
            partial.replace(path)  # whole or not at all, for parallel requests
        finally:
            partial.unlink(missing_ok=True)
        return path

    def release_job_files(self, job_id: str) -> None:
        remove_local(self.work_dir.glob(f"{job_id}.*"))

    def check(self) -> None:
        prefix = self.settings.prefix
        try:
            self._client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
            self._client.put_object(Bucket=self.bucket, Key=prefix + CHECK_KEY, Body=b"uunet")
            self._client.delete_object(Bucket=self.bucket, Key=prefix + CHECK_KEY)
        except _BOTO_ERRORS as exc:
            raise self._error(exc, "checking the bucket") from exc
        log.info("clip store: %s", self.describe_location())
