"""What the job-queue tests share: ``uunet-authority worker`` processes, started from a settings
object (written as a YAML config), the test camera's key in their environment, each in its own
session so that killing one kills its pool too (a host that dies); submitting a clip over HTTP
and waiting for its job; the job's audit trail and ``audit verify`` on the shared database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from authority_service.config import AuthoritySettings
from authority_service.credentials import camera_key_env_var
from tests.authority_service.backends import password_env
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
#: Short lease and visibility timeout: a lost worker is noticed in seconds.
QUEUE = {"queue": "celery", "lease_s": 1.0, "visibility_timeout_s": 3}


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

    def signal(self, number: int) -> None:
        """Send ``number`` to the worker and its pool."""
        os.killpg(self.process.pid, number)

    def kill(self) -> None:
        """SIGKILL the worker and its pool: a host that dies."""
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def one_face_clip(frames: int, models_dir: Path, out: Path) -> Path:
    """``frames`` frames of FFV1 evidence at 160x120 (toy ``Ue``, one model-sized face a
    frame), signed with the test camera's key."""
    return deidentify_clip(
        synthetic_frames(frames, 160, 120),
        lambda i, f: [SYNTHETIC_BOXES[0]],
        models_dir / TOY_MODEL_ID,
        out,
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )


def start_worker(
    settings: AuthoritySettings, root: Path, name: str, env: dict[str, str] | None = None
) -> Worker:
    """Start ``uunet-authority worker --concurrency 1`` on ``settings`` (its config and log
    ``root/<name>.*``; the PostgreSQL password, if any, and ``env`` in its environment)."""
    config = root / f"{name}.yml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("UUNET_")}
    env.pop("CREDENTIALS_DIRECTORY", None)
    env[camera_key_env_var(CAMERA_ID)] = CAMERA_KEY.decode()
    env.update(password_env(settings))
    env.update(extra)
    log = root / f"{name}.log"
    command = [sys.executable, "-m", "authority_service", "--config", str(config), "worker"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--concurrency", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(process, log)


def wait_ready(worker: Worker, timeout: float = 60) -> None:
    """Wait until the worker's Celery consumer says it is ready (it takes messages from then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.process.poll() is None, worker.log.read_text(errors="replace")
        if worker.log.is_file() and " ready." in worker.log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"worker not ready after {timeout} s: {worker.log}")


def submit(live: LiveServer, clip: Path) -> str:
    with live.client() as client:
        accepted = client.post(
            ROUTE,
            files={"clip": ("clip.mkv", clip.read_bytes(), "application/octet-stream")},
            data=reason(),
            headers=live.auth("ivy"),
        )
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["id"]


def finished(live: LiveServer, job_id: str, timeout: float = 60) -> dict:
    with live.client() as client:
        return wait_for_job(client, job_id, live.auth("ivy"), timeout=timeout)


def download(live: LiveServer, job: dict, out: Path) -> Path:
    with live.client() as client:
        result = client.get(job["result_url"], headers=live.auth("ivy"))
    assert result.status_code == 200
    out.write_bytes(result.content)
    return out


def audit_trail(live: LiveServer, job_id: str, at_least: int = 0) -> list[tuple[str, str]]:
    """The job's audit records (action, outcome); waits up to 10 s for ``at_least`` of them
    (a worker writes the job's row, then its audit record)."""
    deadline = time.monotonic() + 10
    while True:
        records = live.services.audit_log.records(limit=10_000)
        trail = [(r.action, r.outcome) for r in records if r.job_id == job_id]
        if len(trail) >= at_least or time.monotonic() > deadline:
            return trail
        time.sleep(0.1)


def verify_audit_chain(settings: AuthoritySettings, tmp_path: Path) -> None:
    """``uunet-authority audit verify`` on the shared database."""
    config = tmp_path / "verify.yml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    command = [sys.executable, "-m", "authority_service", "--config", str(config), "audit"]
    done = subprocess.run(
        [*command, "verify"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and "audit chain valid" in done.stdout, done.stdout + done.stderr


def celery_jobs(redis_server, db: int, **jobs) -> dict:
    return {"jobs": {**QUEUE, "broker_url": f"redis://127.0.0.1:{redis_server.port}/{db}", **jobs}}
