"""authority_service.worker (``jobs.queue: celery``): the API over real HTTP only enqueues, real
``uunet-authority worker`` processes run the jobs through a real Redis server, on the API's
SQLite file and data directory; a worker killed mid-job loses nothing and the attempt limit
ends in a failed, audited job."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from authority_service.config import AuthoritySettings
from shared.geometry import crop
from shared.video_io import read_frames
from tests.authority_service.conftest import (
    SYNTHETIC_BOXES,
    LiveServer,
)
from tests.authority_service.edge_role import synthetic_frames
from tests.authority_service.worker_processes import (
    ROUTE,
    Worker,
    audit_trail,
    celery_jobs,
    download,
    finished,
    one_face_clip,
    start_worker,
    submit,
    verify_audit_chain,
)

LONG_FRAMES = 240


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory, models_dir) -> Path:
    """Evidence long enough to kill its worker mid-job (one model-sized face a frame)."""
    return one_face_clip(LONG_FRAMES, models_dir, tmp_path_factory.mktemp("long") / "long.mkv")


@pytest.fixture
def workers(tmp_path):
    """Start ``uunet-authority worker`` processes for a settings object: ``start(settings)``."""
    started: list[Worker] = []

    def start(settings: AuthoritySettings) -> Worker:
        worker = start_worker(settings, tmp_path, f"worker-{len(started)}")
        started.append(worker)
        return worker

    yield start
    for worker in started:  # the test is over: no job of theirs matters any more
        if worker.process.poll() is None:
            worker.kill()


def _running_with_progress(live: LiveServer, job_id: str, timeout: float = 30) -> dict:
    """Poll over HTTP until a worker has started reversing the job."""
    deadline = time.monotonic() + timeout
    with live.client() as client:
        while True:
            body = client.get(f"{ROUTE}/{job_id}", headers=live.auth("ivy")).json()
            if body["status"] == "running" and body["progress"]["frames_done"] > 0:
                return body
            assert body["status"] in ("queued", "running"), body
            assert time.monotonic() < deadline, f"job {job_id} not started: {body}"
            time.sleep(0.02)


def test_worker_process_runs_the_job_submitted_over_http_as_the_local_mode_does(
    server_factory, workers, redis_server, evidence_clip, tmp_path
):
    local = server_factory(tmp_path / "local")
    api = server_factory(tmp_path / "celery", **celery_jobs(redis_server, 1))
    assert len(api.services.jobs._threads) == 1  # the sweeper only: no job threads in the API
    job_id = submit(api, evidence_clip)
    time.sleep(1.0)
    assert api.services.jobs.store.get(job_id).status == "queued"  # no worker yet: it waits
    workers(api.services.settings)
    job = finished(api, job_id)
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"frames_done": 12, "frames_total": 12}
    reference = finished(local, submit(local, evidence_clip))
    assert reference["status"] == "succeeded"
    assert {**job["report"], "seconds": 0} == {**reference["report"], "seconds": 0}
    ours = download(api, job, tmp_path / "celery.mp4")
    theirs = download(local, reference, tmp_path / "local.mp4")
    pairs = list(zip(read_frames(ours), read_frames(theirs), strict=True))
    assert len(pairs) == 12
    for x, y in pairs:
        np.testing.assert_array_equal(x.rgb, y.rgb)
    assert audit_trail(api, job_id) == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "completed"),
        ("download_result", "granted"),
    ]
    assert api.services.jobs.store.get(job_id).attempts == 1


def test_worker_killed_mid_job_another_worker_runs_it_once_from_scratch(
    server_factory, workers, redis_server, long_clip, tmp_path
):
    api = server_factory(tmp_path / "api", **celery_jobs(redis_server, 2))
    first = workers(api.services.settings)
    job_id = submit(api, long_clip)
    _running_with_progress(api, job_id)
    first.kill()  # mid-job, with its pool process: the message stays unacknowledged
    assert api.services.jobs.store.get(job_id).status == "running"
    workers(api.services.settings)  # gets the message once its visibility timeout passes
    job = finished(api, job_id)
    assert job["status"] == "succeeded", job
    assert job["report"]["frames"] == LONG_FRAMES and job["report"]["faces"] == LONG_FRAMES
    assert api.services.jobs.store.get(job_id).attempts == 2
    out = download(api, job, tmp_path / "result.mp4")
    frames = list(read_frames(out))
    assert len(frames) == LONG_FRAMES
    for frame, original in zip(frames, synthetic_frames(LONG_FRAMES, 160, 120), strict=True):
        box = SYNTHETIC_BOXES[0]
        np.testing.assert_array_equal(crop(frame.rgb, box), crop(original, box))
    results = sorted(p.name for p in api.services.settings.results_dir.glob(f"{job_id}*"))
    assert not [name for name in results if "partial" in name], results
    assert audit_trail(api, job_id) == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "completed"),  # once
        ("download_result", "granted"),
    ]
    verify_audit_chain(api.services.settings, tmp_path)


def test_job_whose_pool_process_dies_past_the_attempt_limit_fails_audited(
    server_factory, workers, redis_server, long_clip, tmp_path
):
    api = server_factory(tmp_path / "api", **celery_jobs(redis_server, 3, max_attempts=1))
    worker = workers(api.services.settings)
    job_id = submit(api, long_clip)
    _running_with_progress(api, job_id)
    (pool,) = worker.pool()
    os.kill(pool, signal.SIGKILL)  # the worker lives on: reject_on_worker_lost puts it back
    job = finished(api, job_id)
    assert job["status"] == "failed" and job["error"]["error"] == "worker_lost", job
    assert worker.process.poll() is None
    trail = audit_trail(api, job_id, at_least=2)
    assert trail == [("reconstruct_clip", "granted"), ("reconstruct_clip", "failed")]
    record = api.services.audit_log.records(limit=10_000)[-1]
    assert record.detail.startswith("worker_lost: the job was started 1 time(s)")
    with api.client() as client:
        result = client.get(f"{ROUTE}/{job_id}/result", headers=api.auth("ivy"))
    assert result.status_code == 500 and result.json()["error"] == "worker_lost"
    verify_audit_chain(api.services.settings, tmp_path)


def test_warm_shutdown_of_a_worker_requeues_its_job_for_the_next_one(
    server_factory, workers, redis_server, long_clip, tmp_path
):
    api = server_factory(tmp_path / "api", **celery_jobs(redis_server, 4))
    first = workers(api.services.settings)
    job_id = submit(api, long_clip)
    _running_with_progress(api, job_id)
    first.process.send_signal(signal.SIGTERM)  # to the main process only, as `docker stop`
    assert first.process.wait(timeout=30) == 0
    stopped = api.services.jobs.store.get(job_id)
    assert (stopped.status, stopped.attempts) == ("queued", 0)  # its start given back
    assert api.services.jobs.upload_path(job_id).is_file()
    workers(api.services.settings)  # the message was put back: the next worker takes it
    job = finished(api, job_id)
    assert job["status"] == "succeeded" and job["report"]["frames"] == LONG_FRAMES
    assert api.services.jobs.store.get(job_id).attempts == 1
    assert audit_trail(api, job_id) == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "completed"),
    ]
