"""The distributed job queue (``jobs.queue: celery``): the Celery application that the API sends
job ids through and that ``uunet-authority worker`` (:mod:`authority_service.worker`) consumes.

A message carries a job id only (a segment's: the job id, the job's start and the segment's
index, :mod:`authority_service.segment_tasks`); the job itself (its upload, settings, requester)
is in the database and the shared data directory. Delivery is at least once, and made safe to
repeat by the job's atomic claim (:meth:`authority_service.job_store.JobStore.claim`; a
segment's, :meth:`authority_service.segment_store.SegmentStore.claim`):

* ``acks_late``: a message is acknowledged when its job has finished, so a worker host that
  dies mid-job leaves it unacknowledged; Redis delivers it again ``jobs.visibility_timeout_s``
  after it was taken. ``reject_on_worker_lost``: a pool process killed mid-job (the worker
  itself alive) gets its message put back at once.
* prefetch 1: a worker holds no more messages than it runs, so none wait behind a long job.

The broker's password is a secret: ``$UUNET_AUTHORITY_BROKER_PASSWORD`` or
``$CREDENTIALS_DIRECTORY/broker-password``, never in ``jobs.broker_url``.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlsplit, urlunsplit

from celery import Celery

from authority_service.config import AuthoritySettings
from shared.config_base import SecretNotFoundError, read_secret

__all__ = [
    "BROKER_PASSWORD_ENV_VAR",
    "BROKER_PASSWORD_NAME",
    "QUEUE",
    "SEGMENT_TASK_NAME",
    "TASK_NAME",
    "broker_url",
    "celery_app",
    "dispatcher",
    "segment_dispatcher",
]

BROKER_PASSWORD_ENV_VAR = "UUNET_AUTHORITY_BROKER_PASSWORD"
BROKER_PASSWORD_NAME = "broker-password"
#: The task that runs one job (its only argument: the job id).
TASK_NAME = "uunet.run_job"
#: The task that reverses one segment of a split clip job (job id, the job's start, segment
#: index; :mod:`authority_service.segment_tasks`).
SEGMENT_TASK_NAME = "uunet.reverse_segment"
#: The broker queue of job messages.
QUEUE = "uunet-jobs"


def broker_url(settings: AuthoritySettings) -> str:
    """``jobs.broker_url`` with the broker password (when one is given) put in.

    Raises:
        ValueError: ``jobs.broker_url`` is not set.
    """
    url = settings.jobs.broker_url
    if url is None:
        raise ValueError("jobs.broker_url is not set")
    try:
        password = read_secret(BROKER_PASSWORD_NAME, BROKER_PASSWORD_ENV_VAR).decode("utf-8")
    except SecretNotFoundError:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = quote(parts.username or "", safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def celery_app(settings: AuthoritySettings) -> Celery:
    """The Celery application of ``settings`` (connects only when used)."""
    jobs = settings.jobs
    app = Celery("uunet-authority", broker=broker_url(settings), set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": jobs.visibility_timeout_s,
            # Look for messages past their visibility timeout this often (kombu's default
            # scans every ~100 s whatever the timeout).
            "unacked_restore_interval": max(1, min(60, jobs.visibility_timeout_s // 10)),
            "unacked_restore_throttle": 1,
        },
    )
    return app


def dispatcher(app: Celery) -> Callable[[str], None]:
    """A function that sends a job id to the workers.

    The function raises the broker client's error when the broker cannot be reached.
    """

    def dispatch(job_id: str) -> None:
        app.send_task(TASK_NAME, args=[job_id], queue=QUEUE)

    return dispatch


def segment_dispatcher(app: Celery) -> Callable[[str, int, int], None]:
    """A function that sends one segment of a split clip job to the workers.

    The function raises the broker client's error when the broker cannot be reached.
    """

    def dispatch(job_id: str, attempt: int, segment: int) -> None:
        app.send_task(SEGMENT_TASK_NAME, args=[job_id, attempt, segment], queue=QUEUE)

    return dispatch
