"""The security probe's harness: one real authority (config, secrets, users, the serving
process, its audit database and CLI) per measurement (``bench/security_probe.py``)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from authority_service.audit import AuditRecord  # noqa: E402
from bench.live_service import ServeProcess, authority_command, free_port, tail  # noqa: E402

log = logging.getLogger("security_probe")


CAMERA = "probe-cam"
ISSUER = "uunet-authority"
SETUP_ADDRESS = "127.0.0.4"  # logins that set the probe up: not the addresses measured
ATTACKER_ADDRESS = "127.0.0.2"
FLOOD_ADDRESS = "127.0.0.3"
PUBLIC_PATHS = {"/healthz", "/metrics", "/v1/token"}
EXTRA_PUBLIC_PATHS = ("/openapi.json", "/docs", "/redoc")
#: The role each protected path prefix needs (None: any signed-in user).
ROLE_BY_PREFIX = (
    ("/v1/users", "admin"),
    ("/v1/audit", "auditor"),
    ("/v1/reconstructions", "investigator"),
    ("/v1/frames", "investigator"),
    ("/v1/approvals", "approver"),
    ("/v1/me", None),
)
ROLES = ("admin", "auditor", "investigator", "approver")
SETTINGS: dict[str, Any] = {
    "server": {"host": "127.0.0.1"},
    "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1},
    "models": {"shipped_default": False, "providers": "cpu", "threads": 1},
    "messages": {"cameras": [CAMERA]},
    "jobs": {"workers": 1},
    "limits": {"max_frame_bytes": 1 << 20, "max_clip_bytes": 4 << 20},
    "log_level": "INFO",
}
REASON = {"case_id": "PROBE-1", "justification": "Security probe of the authority service."}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) else value
    return out


@dataclass
class Secrets:
    """What the probe knows and a real deployment keeps secret: keys and passwords."""

    directory: Path
    jwt_key: bytes = field(default_factory=lambda: secrets.token_urlsafe(48).encode())
    camera_key: bytes = field(default_factory=lambda: secrets.token_urlsafe(32).encode())
    passwords: dict[str, str] = field(default_factory=dict)

    def write(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, value in (
            ("jwt-signing-key", self.jwt_key),
            (f"camera-key-{CAMERA}", self.camera_key),
        ):
            path = self.directory / name
            path.write_bytes(value + b"\n")
            path.chmod(0o600)

    def password(self, user: str) -> str:
        return self.passwords.setdefault(user, secrets.token_urlsafe(18))


@dataclass
class Authority:
    """One authority: its config file, data directory, log file and serving subprocess."""

    root: Path
    keys: Secrets
    overrides: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    server: ServeProcess | None = None
    starts: int = 0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "authority.yml"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "models").mkdir(exist_ok=True)
        self.port = free_port()
        values = _merge(SETTINGS, self.overrides)
        values = _merge(
            values,
            {
                "data_dir": str(self.data_dir),
                "server": {"port": self.port},
                "models": {"models_dir": str(self.root / "models")},
            },
        )
        self.config.write_text(json.dumps(values, indent=2))  # JSON is YAML

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("UUNET_AUTHORITY_", "UUNET_CAMERA_KEY_"))
        }
        env["CREDENTIALS_DIRECTORY"] = str(self.keys.directory)
        env.update(extra)
        return env

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*authority_command(), "--config", str(self.config), *args],
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def add_user(self, name: str, role: str) -> None:
        done = self.cli(
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-env",
            "PROBE_PASSWORD",
            env=self.env(PROBE_PASSWORD=self.keys.password(name)),
        )
        if done.returncode:
            raise RuntimeError(f"user add {name}: {done.returncode} {done.stderr.strip()}")

    def start(self) -> float:
        """Start ``uunet-authority serve``; return the seconds until /healthz answered."""
        if not self.config.exists():
            self.write_config()
        self.server = ServeProcess(self.config, self.env(), self.log_path)
        self.starts += 1
        return self.server.start(self.url, timeout=90, ready=(200, 503))

    def stop(self) -> dict[str, Any]:
        """SIGTERM the server (a clean uvicorn shutdown: lifespan end, refusal windows
        flushed); return its exit code and how long it took."""
        assert self.server is not None
        started = time.monotonic()
        code = self.server.stop()
        self.server = None
        clean = "Application shutdown complete" in self.log_tail(5)
        # uvicorn re-raises SIGTERM once its graceful shutdown is done: exit code -15.
        return {
            "exit_code": code,
            "shutdown_s": round(time.monotonic() - started, 2),
            "application_shutdown_complete": clean,
        }

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)

    def client(self, local_address: str | None = None, **kwargs: Any) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        return httpx.Client(base_url=self.url, timeout=60, transport=transport, **kwargs)

    def login(self, user: str, address: str = SETUP_ADDRESS) -> str:
        with self.client(address) as client:
            response = client.post(
                "/v1/token", data={"username": user, "password": self.keys.password(user)}
            )
        if response.status_code != 200:
            raise RuntimeError(f"login {user}: {response.status_code} {response.text}")
        return response.json()["access_token"]

    def audit_records(self) -> list[AuditRecord]:
        """Every audit record, read straight from the database (read-only)."""
        uri = f"file:{self.data_dir / 'authority.sqlite3'}?mode=ro"
        conn = sqlite3.connect(uri, uri=True)
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()
        finally:
            conn.close()
        return [AuditRecord(**{k: row[k] for k in row.keys()}) for row in rows]  # noqa: SIM118

    def head(self) -> tuple[int, str]:
        last = self.audit_records()[-1]
        return last.seq, last.hash

    def verify(self, *extra: str) -> dict[str, Any]:
        done = self.cli("audit", "verify", *extra)
        lines = done.stdout.strip().splitlines()
        if done.returncode not in (0, 1):
            raise RuntimeError(f"audit verify: {done.returncode} {done.stderr.strip()}")
        return {
            "detected": done.returncode == 1,
            "exit_code": done.returncode,
            "summary": lines[0] if lines else "",
            "problems": [line.strip() for line in lines[1:-1]],
        }
