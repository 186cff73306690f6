"""Where a split clip's parts live between the worker that reverses a segment and the one that
joins them (:mod:`authority_service.segment_tasks`, :mod:`authority_service.segment_join`), on
either clip store (:mod:`authority_service.clip_store`):

* **a directory** that every worker shares: a segment's run writes its part into the results
  directory (:func:`part_path`), and reads the upload's own file there; the join reads the
  parts where they are. Nothing is copied.
* **an S3 bucket** (workers that share no folder): a segment's run reads its own private
  download of the upload (:func:`segment_source`, removed when the run ends, so no host keeps
  a copy of a clip it is no longer working on), writes its part in its scratch folder and
  stores it in the bucket as ``results/<part name>`` (:func:`store_part`; expiry's
  ``results/<job id>.*`` covers what a lost host left there); the joining worker downloads
  the parts it lacks (:func:`fetch_part`) and, once the job has ended, deletes them from the
  bucket and from its scratch folder (:func:`remove_parts`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from authority_service.clip_store import ClipStore, ClipStoreError, result_key, upload_key
from authority_service.segment_rows import Segment

__all__ = [
    "discard_part",
    "drop_local",
    "drop_local_copies",
    "fetch_part",
    "part_path",
    "remove_parts",
    "segment_source",
    "store_part",
]

log = logging.getLogger("authority_service.segment_tasks")


def part_path(work_dir: Path, segment: Segment, token: str) -> Path:
    """The local file of one run (``token``) of ``segment`` (expiry's ``<job id>.*`` covers it,
    in the results directory and in the bucket)."""
    return work_dir / f"{segment.job_id}.seg{segment.segment:04d}.{token}.part"


def _shared(clips: ClipStore) -> bool:
    """Whether every worker reads and writes the same files (the directory store)."""
    return clips.kind == "directory"


@contextmanager
def segment_source(clips: ClipStore, job_id: str, name: str) -> Iterator[Path]:
    """The upload of ``job_id`` for one segment's run: the store's own file (a directory), or a
    private download ``name`` in :attr:`~ClipStore.work_dir`, removed when the run ends.

    Raises:
        ObjectMissingError / StoreUnavailableError: as :meth:`ClipStore.fetch`.
    """
    if _shared(clips):
        yield clips.local_copy(upload_key(job_id))
        return
    copy = clips.work_dir / name
    clips.fetch(upload_key(job_id), copy)
    try:
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def store_part(clips: ClipStore, part: Path) -> None:
    """Make a run's finished part readable by the joining worker (an S3 store: stored in the
    bucket, the local file removed; a directory: it is there already).

    Raises:
        ClipStoreError: it cannot be stored.
    """
    if not _shared(clips) and part.is_file():
        clips.put(part, result_key(part.name))


def drop_local(clips: ClipStore, path: Path) -> None:
    """With an S3 store, remove a local file no later step reads here (a failed run's part); a
    directory store's files are the store's own and stay."""
    if not _shared(clips):
        path.unlink(missing_ok=True)


def drop_local_copies(clips: ClipStore, job_id: str, source: Path) -> None:
    """With an S3 store, remove what a join that queued a segment again downloaded here (the
    upload ``source``, the parts: the bucket keeps them; the next join may run elsewhere)."""
    if _shared(clips):
        return
    source.unlink(missing_ok=True)
    for local in clips.work_dir.glob(f"{job_id}.seg*.part"):
        local.unlink(missing_ok=True)


def fetch_part(clips: ClipStore, part: Path) -> None:
    """Have the part ``part`` here for the join (an S3 store: downloaded unless it is here).

    Raises:
        ObjectMissingError: the bucket holds no such part.
        StoreUnavailableError: it cannot be read.
    """
    if not _shared(clips) and not part.is_file():
        clips.fetch(result_key(part.name), part)


def discard_part(clips: ClipStore, part: Path) -> None:
    """Remove one run's part, here and (an S3 store) in the bucket: a run whose claim was lost
    (a failure is logged: expiry deletes it with the job)."""
    part.unlink(missing_ok=True)
    if not _shared(clips):
        try:
            clips.delete(result_key(part.name))
        except ClipStoreError as exc:
            log.warning("part %s left in the store until expiry: %s", part.name, exc)


def remove_parts(
    clips: ClipStore, job_id: str, stored: Iterable[Path], keep: Path | None = None
) -> None:
    """Remove the job's local parts and their temporary files (all but ``keep``) and, with an
    S3 store, the parts ``stored`` in the bucket (a failure is logged: expiry deletes them with
    the job)."""
    for local in clips.work_dir.glob(f"{job_id}.seg*"):
        if local != keep:
            local.unlink(missing_ok=True)
    if _shared(clips):
        return
    for part in stored:
        try:
            clips.delete(result_key(part.name))
        except ClipStoreError as exc:
            log.warning(
                "job %s: part %s left in the store until expiry: %s", job_id, part.name, exc
            )
