"""``uunet-authority worker``: a Celery worker that runs the jobs the API enqueues
(``jobs.queue: celery``, :mod:`authority_service.task_queue`).

It runs on any host holding the decoders (Ud), the camera keys and the sealing keys, with the
same database and a shared data directory (uploads in, results out). Each pool process builds
its own services (database connections, ONNX sessions) and runs a job the way the API's
threads do (:meth:`authority_service.jobs.JobManager.run_job`: the atomic claim, the lease,
progress in the job row, the audit records, result files renamed into place):

* the job is held by another worker (its lease fresh): the message is retried after
  ``jobs.lease_s``, by when the holder has renewed the lease (it is alive: the retry finds it
  still running, or finished) or not (lost: the job is claimed again, from scratch);
* a warm shutdown (SIGTERM, or Ctrl-C once) interrupts the running jobs: each is queued again
  and its message put back on the broker, as the local mode requeues at shutdown.

A long clip job (``jobs.distribute_segments``) is split by its task into segment tasks, which
any worker takes the same way (claim, lease, retried when busy, put back at a warm shutdown)
and the last of which joins the clip (:mod:`authority_service.segment_tasks`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from typing import Any

from billiard.process import active_children
from celery import Celery, Task
from celery.exceptions import Reject
from celery.signals import worker_process_init, worker_shutting_down

from authority_service.config import AuthoritySettings
from authority_service.job_store import Claim
from authority_service.jobs import JobManager
from authority_service.segment_tasks import BUSY, REQUEUED, SegmentTasks
from authority_service.service import Services, build_services
from authority_service.task_queue import (
    SEGMENT_TASK_NAME,
    TASK_NAME,
    celery_app,
    segment_dispatcher,
)
from shared.sealing_keys import SealingPrivateKey

__all__ = ["run_worker", "worker_app"]

log = logging.getLogger(__name__)


def worker_app(
    settings: AuthoritySettings,
    camera_keys: dict[str, bytes],
    sealing_keys: dict[str, SealingPrivateKey],
) -> Celery:
    """The Celery application of a worker, its tasks registered (services built lazily, once
    per process)."""
    app = celery_app(settings)
    built: list[Services] = []
    segments: list[SegmentTasks] = []

    def manager() -> JobManager:
        if not built:
            services = build_services(settings, camera_keys=camera_keys, sealing_keys=sealing_keys)
            built.append(services)
            segments.append(SegmentTasks(services.jobs, segment_dispatcher(app)))
            services.jobs.split = segments[0].split
        return built[0].jobs

    @app.task(
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,
        ignore_result=True,
    )
    def run_job(task: Task, job_id: str) -> str:
        jobs = manager()
        # A warm shutdown reaches the pool processes as SIGTERM (from the main process below,
        # or from systemd to the whole group): stop the job, which requeues it. Set here, as
        # billiard replaces the handlers a process initializer sets.
        signal.signal(signal.SIGTERM, lambda *_: jobs.interrupt())
        outcome = jobs.run_job(job_id)
        if outcome == Claim.busy:
            raise task.retry(countdown=settings.jobs.lease_s)
        if outcome == "requeued":
            raise Reject(f"job {job_id}: the worker is shutting down", requeue=True)
        return outcome

    @app.task(
        name=SEGMENT_TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,
        ignore_result=True,
    )
    def reverse_segment(task: Task, job_id: str, attempt: int, segment: int) -> str:
        jobs = manager()
        signal.signal(signal.SIGTERM, lambda *_: jobs.interrupt())  # as run_job
        outcome = segments[0].run(job_id, attempt, segment)
        if outcome == BUSY:
            raise task.retry(countdown=settings.jobs.lease_s)
        if outcome == REQUEUED:
            raise Reject(f"job {job_id}: the worker is shutting down", requeue=True)
        return outcome

    def on_process_init(**_: Any) -> None:
        manager()  # at start, not in the first job

    def on_shutting_down(**_: Any) -> None:
        for child in active_children():
            if child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)

    worker_process_init.connect(on_process_init, weak=False)
    worker_shutting_down.connect(on_shutting_down, weak=False)
    return app


def run_worker(
    settings: AuthoritySettings,
    camera_keys: dict[str, bytes],
    sealing_keys: dict[str, SealingPrivateKey],
    concurrency: int,
) -> int:
    """Run a worker of ``concurrency`` pool processes until it is stopped; return its exit code.

    Raises:
        authority_service.db.DatabaseError: the database cannot be opened (checked, and
            migrated, before any job is taken).
        authority_service.clip_store.StoreUnavailableError: the clip store cannot be used.
    """
    services = build_services(settings)  # the database opens (and is migrated) before any fork
    try:
        services.jobs.clips.check()  # and the clip store answers, before any job is taken
    finally:
        services.close()
    app = worker_app(settings, camera_keys, sealing_keys)
    worker = app.Worker(
        hostname=f"uunet-{os.getpid()}@{socket.gethostname()}",
        concurrency=concurrency,
        pool="prefork",
        loglevel=settings.log_level,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        quiet=True,
    )
    log.info("worker: %d process(es) taking jobs", concurrency)
    worker.start()
    return worker.exitcode or 0
