"""A throwaway Redis server for the job-queue tests: ``redis-server`` on 127.0.0.1 and a random
free port, its files in a temporary directory, no persistence, stopped and removed at the end.

The binary comes from ``$PATH`` or Debian's ``redis-server`` package (``/usr/bin``).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

#: Set (CI: .ci/run) to fail rather than skip where no ``redis-server`` is found.
REQUIRE_ENV_VAR = "UUNET_REQUIRE_REDIS"


def find_redis_server() -> Path | None:
    """The ``redis-server`` binary, or ``None``."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None
    )
    return Path(found) if found else None


@dataclass
class RedisServer:
    """A running server: where it listens."""

    port: int
    process: subprocess.Popen
    root: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)


@contextlib.contextmanager
def running_server(binary: Path, port: int) -> Iterator[RedisServer]:
    """Start ``redis-server`` on ``port`` and wait until it answers PING.

    Raises:
        RuntimeError: it exited or did not answer within 20 s (its log in the error).
    """
    root = Path(tempfile.mkdtemp(prefix="uunet-redis-"))
    log = root / "server.log"
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root),
         "--save", "", "--appendonly", "no", "--logfile", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = RedisServer(port, process, root)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if server.client().ping():
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                detail = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"redis-server did not start: {detail}")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
