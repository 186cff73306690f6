"""Soak benchmark: does the authority's memory stay bounded over many clip jobs?

Usage: python bench/authority_soak.py [--jobs N] [--frames F] [--faces K] [--threads T]
    [--warmup W] [--idle-s S] [--max-mib-per-job X] [--model DIR]

It starts the real service as operators do, in its own process (``python -m authority_service
serve`` with a YAML config, the JWT and camera keys in the environment, an investigator added
with ``user add``), logs in, and submits ``--jobs`` clip jobs (default 30) one after another
through the HTTP API: ``POST /v1/reconstructions``, poll ``GET /v1/reconstructions/{id}`` until
it ends, download ``GET .../result``. The clip is a 640x480 lossless (FFV1) evidence clip of
``--frames`` frames (default 40) with ``--faces`` boxes per frame, de-identified and sealed as
the edge does it (``bench.authority.make_evidence``), with the model ``bench/authority.py``
picks: ``--model DIR``, else the shipped default, else its untrained stand-in; the service gets
that model's decoder in its ``models_dir``.

The server's resident memory (``VmRSS`` of ``/proc/<pid>/status``) is printed after start-up,
after each job, and after ``--idle-s`` seconds idle after the last; then the growth per job
(the least-squares slope of RSS over jobs ``--warmup``..N, default 5..N: the first jobs load
Ud and fill the allocator's pools) and the idle RSS. The exit code is 1 when the growth per job
is above ``--max-mib-per-job`` (default 5 MiB), 2 when the service or a job fails. Linux only
(``/proc``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from authority_service.credentials import camera_key_env_var  # noqa: E402
from bench.authority import (  # noqa: E402
    CAMERA,
    CLIP,
    KEY,
    bench_model,
    decoders_folder,
    make_evidence,
)
from bench.live_service import ServeProcess, authority_command, free_port  # noqa: E402

USER, PASSWORD_ENV = "soak-investigator", "UUNET_SOAK_PASSWORD"
MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    """``VmRSS`` of process ``pid`` in MiB.

    Raises:
        OSError: no such process; RuntimeError: no VmRSS line (not Linux).
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS")


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (0 for fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def write_config(directory: Path, models: Path, port: int, threads: int) -> Path:
    """A YAML config: data under ``directory``, the decoders in ``models``, one worker, ONNX
    Runtime on the CPU."""
    config = directory / "authority.yml"
    config.write_text(
        f"data_dir: {directory / 'data'}\n"
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        f"models: {{models_dir: {models}, providers: cpu, threads: {threads}}}\n"
        f"messages: {{cameras: [{CAMERA}]}}\n"
        "jobs: {workers: 1}\n"
        "log_level: WARNING\n"
    )
    return config


def run_job(client: httpx.Client, clip: bytes, index: int, timeout: float) -> dict:
    """Submit ``clip``, wait for the job, download its result; return the finished job.

    Raises:
        RuntimeError: a request was refused, the job failed, or it took over ``timeout`` s.
    """
    response = client.post(
        "/v1/reconstructions",
        files={"clip": ("evidence.mkv", clip, "video/x-matroska")},
        data={"case_id": f"SOAK-{index:04d}", "justification": "memory soak benchmark run"},
    )
    if response.status_code != 202:
        raise RuntimeError(
            f"job {index}: submission answered {response.status_code}: {response.text}"
        )
    job_id = response.json()["id"]
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/reconstructions/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {index}: still {job['status']} after {timeout:.0f} s")
        time.sleep(0.1)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {index}: {job['status']}: {job.get('error')}")
    result = client.get(f"/v1/reconstructions/{job_id}/result")
    if result.status_code != 200 or not result.content:
        raise RuntimeError(f"job {index}: download answered {result.status_code}")
    return job


def soak(args: argparse.Namespace, tmp: Path) -> tuple[list[float], float, float]:
    """Run the soak; return RSS (MiB) after each job, after start-up, and idle after the last."""
    model_dir, which = bench_model(args.model, tmp)
    models = decoders_folder(model_dir, tmp)
    evidence, duration = make_evidence(model_dir, tmp / "evidence.mkv", args.frames, args.faces)
    clip = evidence.read_bytes()
    print(
        f"clip: 640x480 FFV1, {args.frames} frames ({duration:.2f} s), {args.faces} faces per "
        f"frame, {len(clip) / MIB:.1f} MiB; model: {which}; ONNX Runtime threads {args.threads}"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    password = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "UUNET_AUTHORITY_JWT_SECRET": secrets.token_urlsafe(48),
        camera_key_env_var(CAMERA): KEY.decode(),
        PASSWORD_ENV: password,
    }
    config = write_config(tmp, models, port, args.threads)
    subprocess.run(
        [*authority_command(), "--config", str(config), "user", "add", USER, "--role",
         "investigator", "--password-env", PASSWORD_ENV],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    service = ServeProcess(config, env, tmp / "service.log")
    service.start(url)
    pid = service.pid
    try:
        started = rss_mib(pid)
        print(f"service pid {pid}; RSS after start: {started:.1f} MiB")
        with httpx.Client(base_url=url, timeout=120) as client:
            token = client.post("/v1/token", data={"username": USER, "password": password})
            token.raise_for_status()
            client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            after: list[float] = []
            for index in range(1, args.jobs + 1):
                began = time.monotonic()
                job = run_job(client, clip, index, args.job_timeout_s)
                after.append(rss_mib(pid))
                print(
                    f"job {index:3d}: {job['report']['frames']} frames, "
                    f"{job['report']['faces']} faces, {time.monotonic() - began:5.1f} s; "
                    f"RSS {after[-1]:7.1f} MiB"
                )
        time.sleep(args.idle_s)
        idle = rss_mib(pid)
    except RuntimeError:
        print(service.tail(), file=sys.stderr)
        raise
    finally:
        service.stop()
    return after, started, idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30, help="clip jobs, one after another")
    parser.add_argument("--frames", type=int, default=40, help="frames per clip")
    parser.add_argument("--faces", type=int, default=3, choices=range(1, 5))
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument(
        "--warmup", type=int, default=5, help="the slope is fitted over jobs WARMUP..N"
    )
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle wait after the last job")
    parser.add_argument("--job-timeout-s", type=float, default=600.0)
    parser.add_argument(
        "--max-mib-per-job", type=float, default=5.0, help="exit 1 above this growth per job"
    )
    parser.add_argument("--model", type=Path, help="model directory (default: the shipped one)")
    args = parser.parse_args()
    if not CLIP.is_file():
        sys.exit(f"the benchmark clip {CLIP} is missing")
    if args.jobs < args.warmup + 1:
        sys.exit(f"--jobs must be above --warmup ({args.warmup}) to fit a slope")
    with tempfile.TemporaryDirectory() as tmp_name:
        try:
            after, started, idle = soak(args, Path(tmp_name))
        except (RuntimeError, OSError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
            print(f"soak failed: {exc}", file=sys.stderr)
            sys.exit(2)
    jobs = list(range(1, len(after) + 1))
    per_job = slope(jobs[args.warmup - 1 :], after[args.warmup - 1 :])
    print(
        f"RSS MiB: start {started:.1f}, after job 1 {after[0]:.1f}, after job {len(after)} "
        f"{after[-1]:.1f}, idle {args.idle_s:.0f} s later {idle:.1f}"
    )
    print(
        f"growth: {per_job:.2f} MiB/job over jobs {args.warmup}..{len(after)} "
        f"(bound {args.max_mib_per_job:.2f})"
    )
    if per_job > args.max_mib_per_job:
        print("FAIL: memory grows per job above the bound", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
