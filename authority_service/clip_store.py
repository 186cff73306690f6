"""Where uploads and results are kept: one interface (:class:`ClipStore`), two kinds
(``storage.kind``, :mod:`authority_service.storage_settings`). The API and the workers both go
through it.

Keys: ``uploads/<job id>.clip`` (an upload, until its job ends) and ``results/<name>`` (a job's
result, face data and public preview, ``<job id>.*``, until the job expires).

* **directory** (the default, :class:`DirectoryClipStore`): the key is the file
  ``data_dir/uploads/<job id>.clip`` or ``data_dir/results/<name>``, in a directory the API and
  every worker share. An upload is written in place, a job reverses it in place and writes its
  partial files beside the results, renamed into place: the files and paths of before.
* **s3** (:class:`authority_service.s3_store.S3ClipStore`): the object ``<prefix><key>`` of a
  bucket. No directory is shared. The API writes an upload to ``data_dir/scratch``, checks it,
  uploads it and deletes it. A job downloads its upload there (0600), reverses it into local
  files there, uploads the result, face data and public preview, and then every local file of
  the job is deleted (:meth:`ClipStore.release_job_files`): no clip stays on a worker's disk.
  A download of the result streams from the bucket. What the previews read more than once (the
  public preview, the face data, a result to transcode) is cached in the API's
  ``data_dir/results``, beside the previews it makes there; expiry deletes both.

Errors are :class:`ClipStoreError` (an :class:`~authority_service.errors.AuthorityError`):
:class:`StoreUnavailableError` (``storage_unavailable``: no such bucket, credentials refused, the
endpoint unreachable) and :class:`ObjectMissingError` (``stored_object_missing``). ``str()`` of
one names the bucket, endpoint and key (for the log and the start-up error); its ``detail``,
which clients see, names only the job and what is missing.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from authority_service.errors import AuthorityError
from shared.private_files import open_private, private_dir

if TYPE_CHECKING:
    from authority_service.config import AuthoritySettings

__all__ = [
    "CHUNK_BYTES",
    "ClipStore",
    "ClipStoreError",
    "DirectoryClipStore",
    "ObjectMissingError",
    "StoreUnavailableError",
    "StoredObject",
    "open_clip_store",
    "result_key",
    "upload_key",
]

log = logging.getLogger(__name__)

UPLOADS = "uploads"
RESULTS = "results"
CHUNK_BYTES = 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def upload_key(job_id: str) -> str:
    """The key of job ``job_id``'s upload."""
    return f"{UPLOADS}/{job_id}.clip"


def result_key(name: str) -> str:
    """The key of the result file ``name`` (``<job id>.mp4``, ``<job id>.faces.jsonl``, ...)."""
    return f"{RESULTS}/{name}"


def split_key(key: str) -> tuple[str, str]:
    """``(folder, name)`` of a key.

    Raises:
        ValueError: not ``uploads/<name>`` or ``results/<name>`` with a plain file name.
    """
    folder, _, name = key.partition("/")
    if folder not in (UPLOADS, RESULTS) or not _NAME.fullmatch(name):
        raise ValueError(f"not a clip store key: {key!r}")
    return folder, name


def describe(key: str) -> str:
    """What ``key`` holds, for a client (no path, no bucket): ``the upload of job <id>``."""
    folder, name = split_key(key)
    job_id = name.split(".", 1)[0]
    if folder == UPLOADS:
        return f"the upload of job {job_id}"
    return f"the stored file {name} of job {job_id}"


class ClipStoreError(AuthorityError):
    """The store cannot do what was asked. ``str()``: for operators (bucket, endpoint, key);
    :attr:`detail`: for clients."""

    code = "storage_unavailable"

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(detail)
        self.message = message

    def __str__(self) -> str:
        return self.message


class StoreUnavailableError(ClipStoreError):
    """The bucket is missing, the credentials are refused, or the endpoint is unreachable."""

    code = "storage_unavailable"


class ObjectMissingError(ClipStoreError):
    """No object (file) under the key."""

    code = "stored_object_missing"


@dataclass
class StoredObject:
    """An object opened for streaming (:meth:`ClipStore.open`): iterate :attr:`chunks` once (it
    closes the object at its end), or call :attr:`close`."""

    size: int
    chunks: Iterator[bytes]
    close: Callable[[], None]
    #: The object's file, when the store is a directory (serve it as a file).
    path: Path | None = None


def _file_chunks(handle: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()


class ClipStore(ABC):
    """Uploads and results by key (module docstring).

    Attributes:
        kind: ``directory`` or ``s3``.
        work_dir: local folder of a job's working files (partial results, previews being made;
            with ``s3`` also downloaded uploads and uploads being received).
        cache_dir: local folder of what previews read and make (:mod:`authority_service.previews`).
    """

    kind: str
    work_dir: Path
    cache_dir: Path

    @abstractmethod
    def incoming_path(self, key: str) -> Path:
        """Where to write a local file that :meth:`put` then stores as ``key`` (a directory:
        the key's own file)."""

    @abstractmethod
    def put(self, local: Path, key: str) -> None:
        """Store the local file ``local`` as ``key`` (replacing it) and remove ``local``.

        Raises:
            ClipStoreError: it cannot be stored (``local`` is then left as it was).
            OSError: (a directory) it cannot be renamed into place.
        """

    @abstractmethod
    def fetch(self, key: str, destination: Path) -> None:
        """Copy ``key``'s object to the new local file ``destination`` (0600).

        Raises:
            ObjectMissingError: there is no such object.
            StoreUnavailableError: the store cannot be read.
        """

    @abstractmethod
    def open(self, key: str) -> StoredObject:
        """Open ``key``'s object for streaming.

        Raises:
            ObjectMissingError / StoreUnavailableError: as :meth:`fetch`.
        """

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` has an object.

        Raises:
            StoreUnavailableError: the store cannot be read.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``'s object (none: nothing happens).

        Raises:
            StoreUnavailableError: it cannot be deleted.
        """

    @abstractmethod
    def delete_job(self, job_id: str) -> None:
        """Delete the upload and every result file (``results/<job id>.*``) of ``job_id``, and
        the local copies of them.

        Raises:
            StoreUnavailableError: they cannot be listed or deleted.
        """

    @abstractmethod
    def local_copy(self, key: str) -> Path:
        """A local file holding ``key``'s object, for a job to read (a directory: the key's own
        file; else downloaded into :attr:`work_dir`, removed by :meth:`release_job_files`).

        Raises:
            ObjectMissingError / StoreUnavailableError: as :meth:`fetch`.
        """

    @abstractmethod
    def cached(self, key: str) -> Path:
        """A local file holding the result file ``key``, kept for further reads (a directory:
        the key's own file; else downloaded once into :attr:`cache_dir`).

        Raises:
            ObjectMissingError / StoreUnavailableError: as :meth:`fetch`.
        """

    @abstractmethod
    def release_job_files(self, job_id: str) -> None:
        """Delete the local working files of ``job_id`` that are not the store's own (with
        ``s3``: its files in :attr:`work_dir`; a directory: none). Never raises for a file that
        cannot be deleted (logged)."""

    @abstractmethod
    def check(self) -> None:
        """Check that the store can be read and written (at start-up).

        Raises:
            StoreUnavailableError: it cannot, naming why (the bucket and endpoint, or folder).
        """

    @abstractmethod
    def describe_location(self) -> str:
        """Where the store is, for the log: a folder, or ``s3://bucket/prefix at endpoint``."""


class DirectoryClipStore(ClipStore):
    """``storage.kind: directory``: ``uploads/`` and ``results/`` folders (created 0700)."""

    kind = "directory"

    def __init__(self, uploads_dir: Path, results_dir: Path) -> None:
        self.uploads_dir = uploads_dir
        self.results_dir = results_dir
        self.work_dir = results_dir  # partial files are renamed into place
        self.cache_dir = results_dir
        private_dir(uploads_dir)
        private_dir(results_dir)

    def file_of(self, key: str) -> Path:
        """The file of ``key``."""
        folder, name = split_key(key)
        return (self.uploads_dir if folder == UPLOADS else self.results_dir) / name

    def _existing(self, key: str) -> Path:
        path = self.file_of(key)
        if not path.is_file():
            raise ObjectMissingError(f"{path} does not exist", f"{describe(key)} is missing")
        return path

    def incoming_path(self, key: str) -> Path:
        return self.file_of(key)

    def put(self, local: Path, key: str) -> None:
        destination = self.file_of(key)
        if local != destination:
            local.replace(destination)

    def fetch(self, key: str, destination: Path) -> None:
        with self._existing(key).open("rb") as source, open_private(destination, "wb") as out:
            shutil.copyfileobj(source, out, CHUNK_BYTES)

    def open(self, key: str) -> StoredObject:
        path = self._existing(key)
        handle = path.open("rb")
        size = os.fstat(handle.fileno()).st_size
        return StoredObject(size, _file_chunks(handle), handle.close, path)

    def exists(self, key: str) -> bool:
        return self.file_of(key).is_file()

    def delete(self, key: str) -> None:
        self.file_of(key).unlink(missing_ok=True)

    def delete_job(self, job_id: str) -> None:
        self.delete(upload_key(job_id))
        for derived in self.results_dir.glob(f"{job_id}.*"):  # result, partials, previews, faces
            derived.unlink(missing_ok=True)

    def local_copy(self, key: str) -> Path:
        return self._existing(key)

    def cached(self, key: str) -> Path:
        return self._existing(key)

    def release_job_files(self, job_id: str) -> None:
        return None  # its files are the store's

    def check(self) -> None:
        for folder in (self.uploads_dir, self.results_dir):
            if not os.access(folder, os.W_OK | os.X_OK):
                raise StoreUnavailableError(
                    f"the clip store folder {folder} is not writable by this process",
                    "the clip store cannot be written",
                )

    def describe_location(self) -> str:
        return f"{self.uploads_dir.parent} (directory)"


def remove_local(paths: Iterator[Path]) -> None:
    """Delete local files, logging (never raising for) those that cannot be."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("cannot delete the local file %s: %s", path, exc)


def open_clip_store(settings: AuthoritySettings) -> ClipStore:
    """The store ``settings.storage`` configures.

    Raises:
        shared.config_base.SecretNotFoundError: (``s3``) an access key credential is missing.
        StoreUnavailableError: (``s3``) boto3 is not installed.
    """
    if settings.storage.kind == "s3":
        try:
            from authority_service.s3_store import open_s3_store
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] not in ("boto3", "botocore"):
                raise
            raise StoreUnavailableError(
                "storage.kind s3 needs boto3: install the s3 extra (pip install 'uunet[s3]')",
                "the clip store cannot be used",
            ) from exc
        return open_s3_store(settings)
    return DirectoryClipStore(settings.uploads_dir, settings.results_dir)
