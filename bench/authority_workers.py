"""Benchmark part: one long clip job reversed by N real ``uunet-authority worker`` processes
(``bench/authority.py --workers 1,2 --queue celery``), its segments split across them
(:mod:`authority_service.segment_tasks`).

For each N: a throwaway ``redis-server`` (one for the run, a database per N), a fresh data
directory and SQLite database, N workers started as operators start them (``uunet-authority
--config FILE worker --concurrency 1``, the camera key in their environment) and waited for
until each says it is ready, then one job submitted as the API submits it
(:meth:`authority_service.jobs.JobManager.submit`: the upload stored, the job id sent through
the broker) and its row polled until it ends. Printed: the wall-clock seconds from submission to
the finished job per N, the ratio to the first N, whether every N gave the same decoded frames
(SHA-256 over every frame's pixels) and report, and, from the first N's segment rows (each
segment's own seconds, as its worker measured it), the per-segment cost and the seconds it
predicts for N workers: the rest of the first run (planning, messages, the join, the face data,
the audit) plus the tasks spread over N (the public preview, made beside the segments, then the
segments), each worker taking the next as it gets free (while N free cores are there).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import time
from datetime import datetime
from pathlib import Path

import yaml

from authority_service.config import AuthoritySettings
from authority_service.credentials import camera_key_env_var
from authority_service.job_store import Job
from authority_service.segment_rows import Segment, SegmentKind
from authority_service.segment_store import SegmentStore
from authority_service.service import Services, build_services
from bench.live_service import authority_command, free_port, tail
from shared.video_io import read_frames
from tests.authority_service.redis_server import find_redis_server, running_server

__all__ = ["bench_celery", "spread"]

_READY = " ready."


def spread(seconds: list[float], workers: int) -> float:
    """When the last of ``workers`` processes finishes, each taking the next segment in order
    as it gets free (as a pool, or a queue, hands them out)."""
    free = [0.0] * workers
    for cost in seconds:
        free[free.index(min(free))] += cost
    return max(free)


def _settings(root: Path, models: Path, port: int, db: int, **jobs: object) -> dict:
    return {
        "data_dir": str(root / "data"),
        "models": {
            "models_dir": str(models),
            "providers": "cpu",
            "threads": jobs.pop("threads"),
            "shipped_default": False,
        },
        "messages": {"cameras": [jobs.pop("camera")]},
        "jobs": {"queue": "celery", "broker_url": f"redis://127.0.0.1:{port}/{db}", **jobs},
        "log_level": "INFO",
    }


def _start_workers(config: Path, root: Path, env: dict[str, str], n: int) -> list:
    """Start ``n`` workers and wait until each logged that it is ready.

    Raises:
        RuntimeError: one exited or was not ready within 120 s (its log's tail in the error).
    """
    workers = []
    for k in range(n):
        log = root / f"worker-{k}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [*authority_command(), "--config", str(config), "worker", "--concurrency", "1"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        workers.append((process, log))
    deadline = time.monotonic() + 120
    for process, log in workers:
        while _READY not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(workers)
                raise RuntimeError(f"a worker did not start:\n{tail(log)}")
            time.sleep(0.1)
    return workers


def _stop(workers: list) -> None:
    for process, _ in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process, _ in workers:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _run_job(services: Services, evidence: Path, timeout: float) -> tuple[str, float, float]:
    """Submit ``evidence`` as one job; wait for it to end. Returns its id, the seconds and when
    it was submitted (``time.time()``).

    Raises:
        RuntimeError: it did not succeed, or took longer than ``timeout``.
    """
    jobs = services.jobs
    job_id = jobs.new_job_id()
    shutil.copy(evidence, jobs.upload_path(job_id))
    digest = hashlib.sha256(evidence.read_bytes()).hexdigest()
    submitted, started = time.time(), time.perf_counter()
    jobs.submit(
        job_id=job_id,
        owner="bench",
        case_id="BENCH-1",
        justification="segment workers benchmark",
        clip_sha256=digest,
        clip_bytes=evidence.stat().st_size,
        frames_total=None,
    )
    while (job := jobs.store.get(job_id)) is not None and job.status in ("queued", "running"):
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"job {job_id} still {job.status} after {timeout:.0f} s")
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if job is None or job.status != "succeeded":
        raise RuntimeError(f"job {job_id} ended {job and job.status}: {job and job.error_detail}")
    return job_id, seconds, submitted


def _epoch(iso: str | None) -> float:
    return datetime.fromisoformat(iso).timestamp() if iso else float("nan")


def _phases(job: Job, segments: list[Segment], submitted: float) -> tuple[float, float]:
    """Seconds from submission to the first segment's start, and from the last segment's end
    to the finished job (join, face data, public preview, audit)."""
    starts = [_epoch(s.heartbeat_at) - (s.seconds or 0.0) for s in segments]  # and the preview
    ends = [_epoch(s.heartbeat_at) for s in segments]
    return min(starts) - submitted, _epoch(job.finished_at) - max(ends)


def _frames_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for frame in read_frames(path):
        digest.update(frame.rgb.tobytes())
    return digest.hexdigest()


def bench_celery(
    models: Path,
    evidence: Path,
    tmp: Path,
    counts: list[int],
    *,
    segment_frames: int,
    threads: int,
    camera: str,
    key: bytes,
) -> None:
    """Reverse ``evidence`` with each worker count through a real broker; print the figures.

    Raises:
        RuntimeError: no ``redis-server``, a worker that does not start, a job that fails.
    """
    binary = find_redis_server()
    if binary is None:
        raise RuntimeError("no redis-server on $PATH or in /usr/bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UUNET_")}
    env.pop("CREDENTIALS_DIRECTORY", None)
    env[camera_key_env_var(camera)] = key.decode()
    rows = []
    with running_server(binary, free_port()) as redis:
        for db, n in enumerate(counts, start=1):
            root = tmp / f"celery-{n}"
            root.mkdir()
            values = _settings(
                root,
                models,
                redis.port,
                db,
                threads=threads,
                camera=camera,
                segment_frames=segment_frames,
                result_codec="libx264rgb",
            )
            config = root / "authority.yml"
            config.write_text(yaml.safe_dump(values))
            services = build_services(AuthoritySettings(**values), camera_keys={camera: key})
            workers = _start_workers(config, root, env, n)
            try:
                job_id, seconds, submitted = _run_job(services, evidence, timeout=3600)
            finally:
                _stop(workers)
            job = services.jobs.store.get(job_id)
            assert job is not None and job.result_name is not None and job.report is not None
            segments = SegmentStore(services.db).segments(job_id)
            result = services.settings.results_dir / job.result_name
            report = {k: v for k, v in job.report.items() if k != "seconds"}
            phases = _phases(job, segments, submitted) if segments else (0.0, 0.0)
            rows.append((n, seconds, segments, _frames_digest(result), report, phases))
            services.close()
    _print(rows, evidence, segment_frames)


def _print(rows: list, evidence: Path, segment_frames: int) -> None:
    report = rows[0][4]
    duration = report["frames"] / report["fps"]
    base = rows[0][1]
    print(f"{'workers':>7} {'seconds':>8} {'x real time':>12} {'speed-up':>9} {'segments':>9}")
    for n, seconds, units, *_ in rows:
        split = sum(s.kind == SegmentKind.frames for s in units)
        print(
            f"{n:>7} {seconds:8.2f} {duration / seconds:12.2f} {base / seconds:9.2f} "
            f"{split or 1:>9}"
        )
    same = all(r[3] == rows[0][3] and r[4] == report for r in rows)
    print(f"same decoded frames and report for every count: {'yes' if same else 'NO'}")
    first_n, first_s, units = rows[0][0], rows[0][1], rows[0][2]
    if not units:
        print(f"the clip was not split (at most {segment_frames} frames?)")
        return
    segments = [s for s in units if s.kind == SegmentKind.frames]
    previews = [s.seconds or 0.0 for s in units if s.kind == SegmentKind.preview]
    costs = [s.seconds or 0.0 for s in segments]
    per_frame = [c / len(s.pts) for c, s in zip(costs, segments, strict=True)]
    tasks = [*previews, *costs]  # as they are sent: the preview first
    fixed = first_s - sum(tasks) if first_n == 1 else 0.0
    before, after = rows[0][5]
    print(
        f"per segment ({first_n} worker(s), {len(segments)} segments of up to {segment_frames} "
        f"frames): {statistics.mean(per_frame) * 1000:.1f} ms/frame mean, "
        f"{min(per_frame) * 1000:.1f}-{max(per_frame) * 1000:.1f}; {sum(costs):.2f} s in "
        f"segments, {sum(previews):.2f} s making the public preview beside them, {fixed:.2f} s "
        f"besides: {before:.2f} s from submission to the first unit's start, {after:.2f} s "
        "from the last one's end to the finished job (join, face data, audit)"
    )
    for n, _, later, *_ in rows[1:]:
        by_worker: dict[str | None, int] = {}
        for segment in later:
            by_worker[segment.worker] = by_worker.get(segment.worker, 0) + 1
        print(f"{n} workers: units per worker {sorted(by_worker.values(), reverse=True)}")
    if first_n == 1:
        print(
            "predicted seconds for N workers (the rest + the tasks spread over N): "
            + ", ".join(f"{n}: {fixed + spread(tasks, n):.1f}" for n in (1, 2, 4, 8))
        )
