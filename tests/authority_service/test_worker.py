"""authority_service.worker (``jobs.queue: celery``): the API over real HTTP only enqueues, real
``uunet-authority worker`` processes run the jobs through a real Redis server, on the API's
SQLite file and data directory; a worker killed mid-job loses nothing and the attempt limit
ends in a failed, audited job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from authority_service.config import AuthoritySettings, camera_key_env_var
from shared.geometry import crop
from shared.video_io import read_frames
from tests.authority_service.conftest import (
    CAMERA_ID,
    CAMERA_KEY,
    SYNTHETIC_BOXES,
    LiveServer,
    reason,
    wait_for_job,
)
from tests.authority_service.edge_role import deidentify_clip, synthetic_frames
from tests.toy_models import TOY_MODEL_ID

ROUTE = "/v1/reconstructions"
LONG_FRAMES = 240
#: Short lease and visibility timeout: a lost worker is noticed in seconds.
QUEUE = {"queue": "celery", "lease_s": 1.0, "visibility_timeout_s": 3}


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory, models_dir) -> Path:
    """Evidence long enough to kill its worker mid-job (one model-sized face a frame)."""
    return deidentify_clip(
        synthetic_frames(LONG_FRAMES, 160, 120),
        lambda i, f: [SYNTHETIC_BOXES[0]],
        models_dir / TOY_MODEL_ID,
        tmp_path_factory.mktemp("long") / "long.mkv",
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )


@dataclass
class Worker:
    """A ``uunet-authority worker`` process (its own session: killed with its pool)."""

    process: subprocess.Popen
    log: Path

    def pool(self) -> list[int]:
        """The pids of its pool processes."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                children.append(int(stat.parent.name))
        return children

    def kill(self) -> None:
        """SIGKILL the worker and its pool: a host that dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers(tmp_path):
    """Start ``uunet-authority worker`` processes for a settings object: ``start(settings)``."""
    started: list[Worker] = []

    def start(settings: AuthoritySettings) -> Worker:
        config = tmp_path / "worker.yml"
        config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
        env = {k: v for k, v in os.environ.items() if not k.startswith("UUNET_")}
        env.pop("CREDENTIALS_DIRECTORY", None)
        env[camera_key_env_var(CAMERA_ID)] = CAMERA_KEY.decode()
        log = tmp_path / f"worker-{len(started)}.log"
        command = [sys.executable, "-m", "authority_service", "--config", str(config), "worker"]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [*command, "--concurrency", "1"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = Worker(process, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:  # the test is over: no job of theirs matters any more
        if worker.process.poll() is None:
            worker.kill()


def _submit(live: LiveServer, clip: Path) -> str:
    with live.client() as client:
        accepted = client.post(
            ROUTE,
            files={"clip": ("clip.mkv", clip.read_bytes(), "application/octet-stream")},
            data=reason(),
            headers=live.auth("ivy"),
        )
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["id"]


def _finished(live: LiveServer, job_id: str, timeout: float = 60) -> dict:
    with live.client() as client:
        return wait_for_job(client, job_id, live.auth("ivy"), timeout=timeout)


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


def _download(live: LiveServer, job: dict, out: Path) -> Path:
    with live.client() as client:
        result = client.get(job["result_url"], headers=live.auth("ivy"))
    assert result.status_code == 200
    out.write_bytes(result.content)
    return out


def _trail(live: LiveServer, job_id: str, at_least: int = 0) -> list[tuple[str, str]]:
    """The job's audit records (action, outcome); waits up to 10 s for ``at_least`` of them
    (a worker writes the job's row, then its audit record)."""
    deadline = time.monotonic() + 10
    while True:
        records = live.services.audit_log.records(limit=10_000)
        trail = [(r.action, r.outcome) for r in records if r.job_id == job_id]
        if len(trail) >= at_least or time.monotonic() > deadline:
            return trail
        time.sleep(0.1)


def _audit_verify(settings: AuthoritySettings, tmp_path: Path) -> None:
    """``uunet-authority audit verify`` on the shared database."""
    config = tmp_path / "verify.yml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    command = [sys.executable, "-m", "authority_service", "--config", str(config), "audit"]
    done = subprocess.run(
        [*command, "verify"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and "audit chain valid" in done.stdout, done.stdout + done.stderr


def _celery(redis_server, db: int, **jobs) -> dict:
    return {"jobs": {**QUEUE, "broker_url": f"redis://127.0.0.1:{redis_server.port}/{db}", **jobs}}


def test_worker_process_runs_the_job_submitted_over_http_as_the_local_mode_does(
    server_factory, workers, redis_server, evidence_clip, tmp_path
):
    local = server_factory(tmp_path / "local")
    api = server_factory(tmp_path / "celery", **_celery(redis_server, 1))
    assert len(api.services.jobs._threads) == 1  # the sweeper only: no job threads in the API
    job_id = _submit(api, evidence_clip)
    time.sleep(1.0)
    assert api.services.jobs.store.get(job_id).status == "queued"  # no worker yet: it waits
    workers(api.services.settings)
    job = _finished(api, job_id)
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"frames_done": 12, "frames_total": 12}
    reference = _finished(local, _submit(local, evidence_clip))
    assert reference["status"] == "succeeded"
    assert {**job["report"], "seconds": 0} == {**reference["report"], "seconds": 0}
    ours = _download(api, job, tmp_path / "celery.mp4")
    theirs = _download(local, reference, tmp_path / "local.mp4")
    pairs = list(zip(read_frames(ours), read_frames(theirs), strict=True))
    assert len(pairs) == 12
    for x, y in pairs:
        np.testing.assert_array_equal(x.rgb, y.rgb)
    assert _trail(api, job_id) == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "completed"),
        ("download_result", "granted"),
    ]
    assert api.services.jobs.store.get(job_id).attempts == 1


def test_worker_killed_mid_job_another_worker_runs_it_once_from_scratch(
    server_factory, workers, redis_server, long_clip, tmp_path
):
    api = server_factory(tmp_path / "api", **_celery(redis_server, 2))
    first = workers(api.services.settings)
    job_id = _submit(api, long_clip)
    _running_with_progress(api, job_id)
    first.kill()  # mid-job, with its pool process: the message stays unacknowledged
    assert api.services.jobs.store.get(job_id).status == "running"
    workers(api.services.settings)  # gets the message once its visibility timeout passes
    job = _finished(api, job_id)
    assert job["status"] == "succeeded", job
    assert job["report"]["frames"] == LONG_FRAMES and job["report"]["faces"] == LONG_FRAMES
    assert api.services.jobs.store.get(job_id).attempts == 2
    out = _download(api, job, tmp_path / "result.mp4")
    frames = list(read_frames(out))
    assert len(frames) == LONG_FRAMES
    for frame, original in zip(frames, synthetic_frames(LONG_FRAMES, 160, 120), strict=True):
        box = SYNTHETIC_BOXES[0]
        np.testing.assert_array_equal(crop(frame.rgb, box), crop(original, box))
    results = sorted(p.name for p in api.services.settings.results_dir.glob(f"{job_id}*"))
    assert not [name for name in results if "partial" in name], results
    assert _trail(api, job_id) == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "completed"),  # once
        ("download_result", "granted"),
    ]
    _audit_verify(api.services.settings, tmp_path)


def test_job_whose_pool_process_dies_past_the_attempt_limit_fails_audited(
    server_factory, workers, redis_server, long_clip, tmp_path
):
    api = server_factory(tmp_path / "api", **_celery(redis_server, 3, max_attempts=1))
    worker = workers(api.services.settings)
    job_id = _submit(api, long_clip)
    _running_with_progress(api, job_id)
    (pool,) = worker.pool()
    os.kill(pool, signal.SIGKILL)  # the worker lives on: reject_on_worker_lost puts it back
    job = _finished(api, job_id)
    assert job["status"] == "failed" and job["error"]["error"] == "worker_lost", job
    assert worker.process.poll() is None
    trail = _trail(api, job_id, at_least=2)
    assert trail == [("reconstruct_clip", "granted"), ("reconstruct_clip", "failed")]
    record = api.services.audit_log.records(limit=10_000)[-1]
    assert record.detail.startswith("worker_lost: the job was started 1 time(s)")
    with api.client() as client:
        result = client.get(f"{ROUTE}/{job_id}/result", headers=api.auth("ivy"))
    assert result.status_code == 500 and result.json()["error"] == "worker_lost"
    _audit_verify(api.services.settings, tmp_path)


def test_warm_shutdown_of_a_worker_requeues_its_job_for_the_next_one(
    server_factory, workers, redis_server, long_clip, tmp_path
):
    api = server_factory(tmp_path / "api", **_celery(redis_server, 4))
    first = workers(api.services.settings)
    job_id = _submit(api, long_clip)
    _running_with_progress(api, job_id)
    first.process.send_signal(signal.SIGTERM)  # to the main process only, as `docker stop`
    assert first.process.wait(timeout=30) == 0
    stopped = api.services.jobs.store.get(job_id)
    assert (stopped.status, stopped.attempts) == ("queued", 0)  # its start given back
    assert api.services.jobs.upload_path(job_id).is_file()
    workers(api.services.settings)  # the message was put back: the next worker takes it
    job = _finished(api, job_id)
    assert job["status"] == "succeeded" and job["report"]["frames"] == LONG_FRAMES
    assert api.services.jobs.store.get(job_id).attempts == 1
    assert _trail(api, job_id) == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "completed"),
    ]
