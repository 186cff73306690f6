"""The real authority service in a child process, for the benchmarks that measure it from outside.

``uunet-authority --config FILE serve`` (or ``python -m authority_service`` when the script is
not installed next to this interpreter), its output in a log file, started and waited for
until ``/healthz`` answers, stopped with SIGTERM (a clean uvicorn shutdown).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

__all__ = ["ServeProcess", "authority_command", "free_port", "tail"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def authority_command() -> list[str]:
    """How to run ``uunet-authority`` with this interpreter."""
    script = Path(sys.executable).with_name("uunet-authority")
    return [str(script)] if script.exists() else [sys.executable, "-m", "authority_service"]


class ServeProcess:
    """``uunet-authority --config config serve`` as a child process, its output in ``log``."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.config, self.env, self.log = config, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, url: str, timeout: float = 120.0, ready: Sequence[int] = (200,)) -> float:
        """Start serving; return the seconds until ``/healthz`` answered with a ``ready``
        status.

        Raises:
            RuntimeError: it exited or did not answer in ``timeout`` seconds.
        """
        started = time.monotonic()
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [*authority_command(), "--config", str(self.config), "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        while time.monotonic() < started + timeout:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the service exited ({self.process.returncode}):\n{self.tail()}"
                )
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code in ready:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the service did not answer in {timeout:.0f} s:\n{self.tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM the service and wait (kill it after ``timeout``); its exit code (uvicorn
        re-raises SIGTERM after a graceful shutdown: -15), ``None`` if it was not running."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` of its output."""
        return tail(self.log, lines)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` of a log file ("" when there is none yet)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""
