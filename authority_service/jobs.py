"""Reversal jobs: stored in the database (:mod:`authority_service.job_store`), run by a bounded
pool of worker threads of this process (``jobs.queue: local``) or by ``uunet-authority worker``
processes that a broker feeds (``celery``, :mod:`authority_service.worker`; this process then
only enqueues, and sweeps). Both run a job the same way (:meth:`JobManager.run_job`): claim it,
renew its lease while it runs, reverse it (:class:`authority_service.job_runner.JobRunner`).

Lifecycle: ``queued`` -> ``running`` -> ``succeeded`` | ``failed``; with ``jobs.require_approval``
a job waits ``pending_approval`` until an approver queues it or refuses it (``refused``, its upload
deleted; :mod:`authority_service.approvals`). Any job becomes ``expired`` (its upload and result
deleted, its row kept) ``jobs.ttl_s`` after submission. Jobs survive a restart: at start-up, jobs
left ``running`` by a stopped or crashed process go back to ``queued`` and every queued job is run
again from its stored upload; pending ones keep waiting (with ``celery`` the API leaves running
jobs to their workers: one whose worker is lost is run again when its message is delivered again).
A job interrupted by shutdown is requeued the same way. A job started ``jobs.max_attempts`` times,
its worker lost each time, fails (``worker_lost``). A clip job that succeeds also leaves, beside
its result, its face data (every frame's boxes and how each was reversed,
:mod:`authority_service.face_sidecar`) and the watermarked preview of its uploaded clip (made
before the upload is deleted, :mod:`authority_service.preview_media`); expiry deletes them with the
result (every ``<job id>.*`` file of the results directory; uploads and results are in the clip
store, a shared directory or an S3 bucket: :mod:`authority_service.clip_store`). Every finished
job is audited (``completed``, ``refused`` for bad input, ``failed`` for an internal error or a
clip store that failed; naming the approver when there was one), as is every expiry.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from authority_service.audit import AuditEntry
from authority_service.clip_store import ClipStore, DirectoryClipStore, upload_key
from authority_service.config import JobSettings
from authority_service.errors import (
    AuthorityError,
    ConflictError,
    GoneError,
    PermissionDeniedError,
    ServiceBusyError,
)
from authority_service.job_runner import JobRunner
from authority_service.job_store import Claim, Decision, Job, JobKind, JobStatus, JobStore
from authority_service.metrics import Metrics
from authority_service.reconstruction import (
    ClipReport,
    Reconstructor,
)
from shared.log_safety import escape_control
from shared.malloc_tuning import release_free_memory
from shared.private_files import private_dir

__all__ = ["Job", "JobKind", "JobManager", "JobStatus", "JobStore", "require_succeeded"]

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def require_succeeded(job: Job) -> None:
    """Raise unless ``job`` succeeded, so its output (result, previews, face data) can be read.

    Raises:
        GoneError: ``job_expired``: it expired; its files were deleted.
        AuthorityError: it failed, with the job's own error code (``forged_message``, ...).
        PermissionDeniedError: ``job_refused``: an approver refused it.
        ConflictError: ``job_pending_approval`` (it waits for an approver) or
            ``job_not_finished`` (queued or running), with ``retry_after_s``.
    """
    if job.status == JobStatus.expired:
        raise GoneError(f"job {job.id} expired at {job.expires_at}; its result was deleted")
    if job.status == JobStatus.failed:
        raise AuthorityError(
            f"job {job.id} failed: {job.error_detail}",
            code=job.error_code or "internal_error",
            job_id=job.id,
        )
    if job.status == JobStatus.refused:
        raise PermissionDeniedError(
            f"job {job.id} was refused by {job.decided_by}: {job.decision_reason}",
            code="job_refused",
        )
    if job.status == JobStatus.pending_approval:
        raise ConflictError(
            f"job {job.id} waits for a second user (role approver) to approve it",
            code="job_pending_approval",
            retry_after_s=30,
        )
    if job.status != JobStatus.succeeded:
        raise ConflictError(
            f"job {job.id} is {job.status} ({job.frames_done} frames done)",
            code="job_not_finished",
            retry_after_s=2,
        )


class JobManager:
    """Runs queued jobs on ``settings.workers`` threads (or has remote workers run them, through
    ``dispatch``) and deletes expired ones.

    Args:
        store: the job table.
        reconstructor: does the work.
        audit: writes an audit record (raises if it cannot: the job then fails closed).
        settings: pool size, queue bound, time to live, result codec, whether jobs need an
            approver's decision.
        uploads_dir / results_dir: where uploads wait and results are kept (with an S3
            ``clips`` store: the local cache of what previews read and make).
        metrics: optional counters.
        dispatch: sends a job id to remote workers (``jobs.queue: celery``); ``None``: this
            process runs jobs on its own threads.
        clips: the clip store (default: the folders ``uploads_dir`` and ``results_dir``).
    """

    def __init__(
        self,
        store: JobStore,
        reconstructor: Reconstructor,
        audit: Callable[[AuditEntry], object],
        settings: JobSettings,
        uploads_dir: Path,
        results_dir: Path,
        metrics: Metrics | None = None,
        dispatch: Callable[[str], None] | None = None,
        *,
        clips: ClipStore | None = None,
    ) -> None:
        self.store = store
        self.clips = clips or DirectoryClipStore(uploads_dir, results_dir)
        self.dispatch = dispatch
        self.reconstructor = reconstructor
        self.audit = audit
        self.settings = settings
        self.uploads_dir = uploads_dir
        self.results_dir = results_dir
        self.metrics = metrics
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._admission = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running = 0
        #: Hands a claimed clip job's segments out (``uunet-authority worker``,
        #: :meth:`authority_service.segment_tasks.SegmentTasks.split`); false: run it here.
        self.split: Callable[[Job], bool] | None = None
        private_dir(uploads_dir)
        private_dir(results_dir)
        self.runner = JobRunner(
            store,
            reconstructor,
            audit,
            settings,
            uploads_dir,
            results_dir,
            metrics,
            stopping=self._stopping,
            clips=self.clips,
        )

    # ---------------------------------------------------------------- paths
    def upload_path(self, job_id: str) -> Path:
        """Where an upload is written before :meth:`submit` stores it (a directory store: its
        place in the store)."""
        return self.clips.incoming_path(upload_key(job_id))

    def discard_upload(self, job_id: str) -> None:
        """Delete ``job_id``'s upload, written or stored (a submission that failed, a refused
        job); a store that fails to delete it is logged."""
        self.upload_path(job_id).unlink(missing_ok=True)
        self.runner.discard_upload(job_id)

    def result_path(self, job: Job) -> Path | None:
        return self.results_dir / job.result_name if job.result_name else None

    @staticmethod
    def new_job_id() -> str:
        """A fresh, unguessable job id: 24 lowercase hex characters."""
        return secrets.token_hex(12)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Requeue interrupted jobs, start the workers and the expiry sweeper; with remote
        workers, send the queued jobs again (a message lost with the broker's data; a worker
        drops a duplicate) and start the sweeper only."""
        self._stopping.clear()
        if self.dispatch is None:
            requeued = self.store.requeue_interrupted()
            if requeued:
                log.warning("%d job(s) interrupted by the last shutdown will run again", requeued)
        self.sweep()
        for job in self.store.queued():
            self._enqueue(job.id)
        self._update_gauges()
        for i in range(self.settings.workers if self.dispatch is None else 0):
            thread = threading.Thread(target=self._work, name=f"job-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        sweeper = threading.Thread(target=self._sweep_loop, name="job-sweeper", daemon=True)
        sweeper.start()
        self._threads.append(sweeper)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the workers; a job in progress is interrupted and stays queued for next start."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        self._queue = queue.Queue()

    def interrupt(self) -> None:
        """Ask the jobs running in this process to stop: each is queued again (signal-safe)."""
        self._stopping.set()

    @property
    def alive(self) -> bool:
        """Whether every worker thread is running."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    # ---------------------------------------------------------------- submission
    @property
    def require_approval(self) -> bool:
        """Whether new jobs wait for an approver (``jobs.require_approval``)."""
        return self.settings.require_approval

    def ensure_capacity(self) -> None:
        """Raise :class:`ServiceBusyError` when ``max_queued`` jobs are already waiting (for a
        worker, or for approval: each holds its upload on disk)."""
        waiting = self.store.count(JobStatus.queued) + self.store.count(JobStatus.pending_approval)
        if waiting >= self.settings.max_queued:
            raise ServiceBusyError(
                f"{waiting} jobs are already waiting; try again later", retry_after_s=30
            )

    def submit(
        self,
        *,
        job_id: str,
        owner: str,
        case_id: str,
        justification: str,
        clip_sha256: str,
        clip_bytes: int,
        frames_total: int | None,
        kind: str = JobKind.clip,
    ) -> Job:
        """Store a job whose upload is already at :meth:`upload_path` and queue it, or leave it
        ``pending_approval`` when :attr:`require_approval`.

        Call :meth:`ensure_capacity` first (and audit the attempt in between): this method
        does not refuse, so an audited acceptance is never followed by a refusal.

        Raises:
            ClipStoreError: the upload cannot be put into the clip store (no job is stored).
        """
        self.clips.put(self.upload_path(job_id), upload_key(job_id))  # before any worker sees it
        with self._admission:
            job = self.store.create(
                job_id=job_id,
                owner=owner,
                case_id=case_id,
                justification=justification,
                clip_sha256=clip_sha256,
                clip_bytes=clip_bytes,
                frames_total=frames_total,
                ttl_s=self.settings.ttl_s,
                kind=kind,
                approval_required=self.require_approval,
            )
            if job.status == JobStatus.queued:
                self._enqueue(job.id)
        self._update_gauges()
        return job

    def decide(self, job_id: str, decision: str, by: str, reason: str) -> Job:
        """Queue (``approved``) or end (``refused``, its upload deleted) a pending job.

        The checks of who may decide are :func:`authority_service.approvals.check_decision`'s.

        Raises:
            ConflictError: ``job_not_pending``: the job is no longer pending (another decision
                or its expiry came first).
        """
        with self._admission:
            if not self.store.decide(job_id, decision, by, reason):
                raise ConflictError(
                    f"job {job_id} is no longer pending approval", code="job_not_pending"
                )
            if decision == Decision.approved:
                self._enqueue(job_id)
        if decision == Decision.refused:
            self.discard_upload(job_id)
        log.info("job %s: %s by %s: %s", job_id, decision, by, escape_control(reason))
        self._update_gauges()
        job = self.store.get(job_id)
        assert job is not None
        return job

    # ---------------------------------------------------------------- workers
    def _enqueue(self, job_id: str) -> None:
        if self.dispatch is None:
            self._queue.put(job_id)
            return
        try:
            self.dispatch(job_id)
        except Exception:  # the broker's client raises its own errors; the job stays queued
            log.exception(
                "job %s: cannot be sent to the workers; it stays queued and is sent again at "
                "the next start of the service",
                job_id,
            )

    def _update_gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.jobs_queued.set(self.store.count(JobStatus.queued))
            self.metrics.jobs_running.set(self._running)
            self.metrics.jobs_pending_approval.set(self.store.count(JobStatus.pending_approval))

    def _work(self) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._admission:
                self._running += 1
            self._update_gauges()
            try:
                self.run_job(job_id)
            except Exception:
                log.exception("job %s: unexpected failure", job_id)
            finally:
                with self._admission:
                    self._running -= 1
                self._update_gauges()
                release_free_memory()  # the job's frame buffers, kept by malloc otherwise

    def run_job(self, job_id: str) -> str:
        """Claim ``job_id`` (:meth:`JobStore.claim`) and, if won, run it while renewing its
        lease; what a worker thread and a remote worker's task both do.

        Returns:
            ``"finished"`` (succeeded, failed or refused, audited), ``"requeued"`` (interrupted
            by shutdown: queued again), ``"split"`` (its segments were handed to the job
            queue's workers by :attr:`split`), or the :class:`Claim` outcome when it did not
            run: ``busy`` (another worker holds it), ``gone`` (nothing to run) or ``exhausted``
            (failed ``worker_lost``, audited).
        """
        outcome, job = self.store.claim(
            job_id, lease_s=self.settings.lease_s, max_attempts=self.settings.max_attempts
        )
        if outcome == Claim.exhausted:
            assert job is not None
            log.error("job %s: %s", job_id, job.error_detail)
            self._audit_finish(job, "failed", f"worker_lost: {job.error_detail}", None)
            self._count(job, "failed")
        if outcome != Claim.claimed:
            return outcome
        assert job is not None
        if job.attempts > 1:
            log.warning("job %s: start %d, from scratch (a worker was lost)", job_id, job.attempts)
        with self.lease(job_id):
            if self.split is not None and job.kind == JobKind.clip and self.split(job):
                return "split"
            finished = self._run(job)
        return "finished" if finished else "requeued"

    @contextmanager
    def lease(self, job_id: str) -> Iterator[None]:
        """Renew ``job_id``'s lease (every ``jobs.lease_s``/4) while the block runs."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.settings.lease_s / 4):
                try:
                    self.store.renew_lease(job_id)
                except SQLAlchemyError as exc:
                    log.warning("job %s: lease not renewed (will retry): %s", job_id, exc)

        renewer = threading.Thread(target=renew, name=f"job-lease-{job_id[:8]}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()

    def _audit_finish(self, job: Job, outcome: str, detail: str, report: ClipReport | None) -> None:
        self.runner.audit_finish(job, outcome, detail, report)

    def _run(self, job: Job) -> bool:
        """Reverse ``job`` into its result (:meth:`JobRunner.run`)."""
        return self.runner.run(job)

    def _count(self, job: Job, outcome: str) -> None:
        self.runner.count(job, outcome)

    # ---------------------------------------------------------------- expiry
    def _sweep_loop(self) -> None:
        while not self._stopping.wait(self.settings.sweep_interval_s):
            try:
                self.sweep()
            except (OSError, SQLAlchemyError, AuthorityError) as exc:
                log.error("expiry sweep failed (will retry): %s", exc)

    def sweep(self, now: datetime | None = None) -> int:
        """Delete uploads and results of jobs past their expiry; return how many expired."""
        expired = 0
        for job in self.store.due_for_expiry(now or _now()):
            self.clips.delete_job(job.id)  # upload, result, partials, previews, face data
            self.store.mark_expired(job.id)
            self.audit(
                AuditEntry(
                    actor="system",
                    action="expire_job",
                    outcome="completed",
                    case_id=job.case_id,
                    clip_sha256=job.clip_sha256,
                    job_id=job.id,
                    detail=f"job of {job.owner} expired"
                    + (" unapproved" if job.status == JobStatus.pending_approval else "")
                    + "; upload, result and previews deleted",
                )
            )
            expired += 1
        return expired
