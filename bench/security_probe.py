"""Security probe of the authority: re-measure the figures of the security review.

Usage::

    .venv/bin/python bench/security_probe.py [--flood N] [--threads T] [--attempts N]
        [--out FILE] [--keep]

It starts the REAL service, as ``uunet-authority --config FILE serve`` (a uvicorn server in a
subprocess on 127.0.0.1, secrets in ``$CREDENTIALS_DIRECTORY``, users made with
``uunet-authority user add``), each in a temporary data directory, and prints one JSON report
on standard output (progress goes to standard error through ``logging``):

1. ``bad_tokens``: every route of ``/openapi.json`` (path parameters filled with dummy values)
   with every kind of bad credential (none, another scheme, an empty bearer, garbage, another
   signing key, ``alg: none``, HS512 with the real key, expired, not yet valid, wrong audience
   or issuer, a missing claim, an unknown user, a stale generation, the token of a disabled,
   a re-enabled and a re-passworded user), and on role-gated routes the tokens of the other
   roles and a token claiming the needed role (real key): status codes per kind, and every
   case that was not a 401 (403 for a wrong role). Public routes are reported apart.
2. ``audit_tampering``: on a copy of a data directory (server stopped), each of: delete the last
   record, truncate the tail, edit a record and re-chain the rest, the same plus the anchor
   files rewritten, and the tail truncated with the anchor files removed; then 0, 1 or 5
   legitimate appends through the real server (an admin login, then admin user listings);
   then ``uunet-authority audit verify`` (plain, with ``--anchor`` a pre-tampering copy of the
   journal, and, when plain verify missed it, with ``--expect-head SEQ:HASH``).
3. ``flood``: N requests with a garbage bearer from a few client threads (from 127.0.0.3):
   requests/s served, and the audit records they left after a SIGTERM shutdown (the refusal
   window is flushed then), whose summed :func:`~authority_service.refusals.refusal_count`
   must equal N.
4. ``lockout``: an attacker at 127.0.0.2 sends wrong passwords for a real user (statuses and
   ``Retry-After``), the real user then logs in from 127.0.0.1, an admin unlocks, the attacker's
   address logs in; ``backoff``: the same on a server with a 1 s lockout (cap 4 s), waiting out
   each lockout, to show the doubling.
5. ``body_limits``: chunked and declared over-limit bodies on the login route and the frame
   route, an anonymous over-limit upload, and 1x1 frame/clip uploads.

The settings are the defaults (login limits, refusal window of 60 s) except: argon2id at
time_cost 1, 8 MiB, parallelism 1 (so the run takes about a minute or two on 2 busy cores),
no decoders (no model is needed: every probe is refused before one would run), a 1 MiB frame
and 4 MiB clip limit. The report's ``settings`` says so.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import jwt
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from authority_service.audit import AuditRecord, record_hash  # noqa: E402
from authority_service.media import encode_png  # noqa: E402
from authority_service.refusals import refusal_count  # noqa: E402

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
    ("/v1/me", None),
)
ROLES = ("admin", "auditor", "investigator")
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) else value
    return out


def _command() -> list[str]:
    script = Path(sys.executable).with_name("uunet-authority")
    return [str(script)] if script.exists() else [sys.executable, "-m", "authority_service"]


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
    proc: subprocess.Popen[bytes] | None = None
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
        self.port = _free_port()
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
            [*_command(), "--config", str(self.config), *args],
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
        started = time.monotonic()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [*_command(), "--config", str(self.config), "serve"],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        deadline = started + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({self.proc.returncode}):\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code in (200, 503):
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer in 90 s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> dict[str, Any]:
        """SIGTERM the server (a clean uvicorn shutdown: lifespan end, refusal windows
        flushed); return its exit code and how long it took."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        clean = "Application shutdown complete" in self.log_tail(5)
        # uvicorn re-raises SIGTERM once its graceful shutdown is done: exit code -15.
        return {
            "exit_code": code,
            "shutdown_s": round(time.monotonic() - started, 2),
            "application_shutdown_complete": clean,
        }

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

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


# -- tokens -----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(sub: str, role: str, gen: int = 0, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": sub,
        "role": role,
        "gen": gen,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": secrets.token_hex(8),
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _alg_none(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def bad_credentials(key: bytes, real: dict[str, str]) -> dict[str, dict[str, str]]:
    """Headers of every kind of bad credential; ``real``: tokens of the disabled, re-enabled
    and re-passworded users (obtained before the change)."""
    now = int(time.time())
    other_key = secrets.token_urlsafe(48).encode()

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def signed(
        claims: dict[str, Any], alg: str = "HS256", signing_key: bytes = key
    ) -> dict[str, str]:
        return bearer(jwt.encode(claims, signing_key, algorithm=alg))

    return {
        "none": {},
        "basic_scheme": {"Authorization": "Basic " + _b64(b"adam:password")},
        "empty_bearer": {"Authorization": "Bearer"},
        "garbage": bearer("not-a-token"),
        "garbage_jwt_shape": bearer("aaaa.bbbb.cccc"),
        "other_key": signed(_claims("adam", "admin"), signing_key=other_key),
        "alg_none": bearer(_alg_none(_claims("adam", "admin"))),
        "hs512_real_key": signed(_claims("adam", "admin"), alg="HS512"),
        "expired": signed(_claims("adam", "admin", iat=now - 1200, nbf=now - 1200, exp=now - 600)),
        "not_yet_valid": signed(_claims("adam", "admin", nbf=now + 600)),
        "wrong_audience": signed(_claims("adam", "admin", aud="someone-else")),
        "wrong_issuer": signed(_claims("adam", "admin", iss="someone-else")),
        "missing_exp": signed(_claims("adam", "admin", exp=None)),
        "missing_jti": signed(_claims("adam", "admin", jti=None)),
        "unknown_user": signed(_claims("ghost", "admin")),
        "stale_generation": signed(_claims("adam", "admin", gen=99)),
        "disabled_user": bearer(real["disabled"]),
        "reenabled_user_old_token": bearer(real["reenabled"]),
        "password_changed_old_token": bearer(real["repassworded"]),
    }


# -- 1. bad tokens ----------------------------------------------------------------------------


def _required_role(path: str) -> tuple[bool, str | None]:
    for prefix, role in ROLE_BY_PREFIX:
        if path.startswith(prefix):
            return True, role
    return False, None


def _fill(path: str, parameters: list[dict[str, Any]]) -> str:
    for param in parameters:
        if param.get("in") != "path":
            continue
        name = param["name"]
        value = {"name": "ivy", "job_id": "0" * 24}.get(name, "dummy")
        path = path.replace("{" + name + "}", value)
    return path


def _body(operation: dict[str, Any]) -> dict[str, Any]:
    content = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        props = content["multipart/form-data"].get("schema", {}).get("properties", {})
        files = {
            n: ("probe.bin", b"\x00" * 64, "application/octet-stream")
            for n, p in props.items()
            if p.get("format") == "binary"
        }
        data = {n: REASON.get(n, "probe value") for n, p in props.items() if n not in files}
        return {"files": files, "data": data}
    if "application/json" in content:
        return {"json": {}}
    if "application/x-www-form-urlencoded" in content:
        return {"data": {}}
    return {}


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error"))
    except (ValueError, AttributeError):
        return "(not a JSON error)"


def probe_bad_tokens(auth: Authority, admin: str) -> dict[str, Any]:
    """Every route x every bad credential; wrong roles on role-gated routes."""
    with auth.client(SETUP_ADDRESS, headers={"Authorization": f"Bearer {admin}"}) as client:
        for name, role in (("dora", "admin"), ("erin", "auditor"), ("rex", "investigator")):
            body = {"name": name, "role": role, "password": auth.keys.password(name)}
            client.post("/v1/users", json=body).raise_for_status()
        real = {
            "disabled": auth.login("dora"),
            "reenabled": auth.login("erin"),
            "repassworded": auth.login("rex"),
        }
        for patch in (
            ("dora", {"disabled": True}),
            ("erin", {"disabled": True}),
            ("erin", {"disabled": False}),
            ("rex", {"password": secrets.token_urlsafe(18)}),
        ):
            client.patch(f"/v1/users/{patch[0]}", json=patch[1]).raise_for_status()
    tokens = {
        role: auth.login(user)
        for user, role in (("adam", "admin"), ("audrey", "auditor"), ("ivy", "investigator"))
    }
    users = {"admin": "adam", "auditor": "audrey", "investigator": "ivy"}
    gens = {
        role: jwt.decode(t, options={"verify_signature": False})["gen"]
        for role, t in tokens.items()
    }
    kinds = bad_credentials(auth.keys.jwt_key, real)

    with auth.client("127.0.0.1") as client:
        spec = client.get("/openapi.json").json()
        routes = []
        for path, item in sorted(spec["paths"].items()):
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    params = operation.get("parameters", []) + item.get("parameters", [])
                    routes.append((method.upper(), path, _fill(path, params), operation))
        per_kind: dict[str, Counter[int]] = {k: Counter() for k in kinds}
        per_kind.update({"wrong_role": Counter(), "forged_role_claim": Counter()})
        codes: dict[str, Counter[str]] = {k: Counter() for k in per_kind}
        unexpected, public, cases, refused = [], [], 0, 0

        def send(
            method: str, url: str, operation: dict[str, Any], headers: dict[str, str]
        ) -> httpx.Response:
            return client.request(method, url, headers=headers, **_body(operation))

        for method, path, url, operation in routes:
            protected, role = _required_role(path)
            if path in PUBLIC_PATHS or not protected:
                for kind in ("none", "garbage"):
                    response = send(method, url, operation, kinds[kind])
                    public.append(
                        {
                            "route": f"{method} {path}",
                            "credential": kind,
                            "status": response.status_code,
                        }
                    )
                continue
            trials = [(kind, headers, 401) for kind, headers in kinds.items()]
            if role is not None:
                for other in ROLES:
                    if other == role:
                        continue
                    trials.append(("wrong_role", {"Authorization": f"Bearer {tokens[other]}"}, 403))
                    forged = jwt.encode(
                        _claims(users[other], role, gens[other]),
                        auth.keys.jwt_key,
                        algorithm="HS256",
                    )
                    trials.append(("forged_role_claim", {"Authorization": f"Bearer {forged}"}, 403))
            for kind, headers, expected in trials:
                response = send(method, url, operation, headers)
                cases += 1
                per_kind[kind][response.status_code] += 1
                codes[kind][_error_code(response)] += 1
                if response.status_code in (401, 403):
                    refused += 1
                if response.status_code != expected:
                    unexpected.append(
                        {
                            "route": f"{method} {path}",
                            "url": url,
                            "credential": kind,
                            "expected": expected,
                            "status": response.status_code,
                            "body": response.text[:400],
                        }
                    )
        for path in EXTRA_PUBLIC_PATHS:
            public.append(
                {
                    "route": f"GET {path}",
                    "credential": "none",
                    "status": client.get(path).status_code,
                }
            )
    return {
        "routes": [f"{m} {p}" for m, p, _, _ in routes],
        "protected_routes": sum(1 for _, p, _, _ in routes if p not in PUBLIC_PATHS),
        "credential_kinds": [*kinds, "wrong_role", "forged_role_claim"],
        "cases": cases,
        "refused_401_or_403": refused,
        "status_counts_by_kind": {k: dict(sorted(v.items())) for k, v in per_kind.items()},
        "error_codes_by_kind": {k: dict(sorted(v.items())) for k, v in codes.items()},
        "not_as_expected": unexpected,
        "public_routes": public,
    }


# -- 2. audit tampering -----------------------------------------------------------------------


@contextmanager
def _tamper_db(auth: Authority) -> Iterator[sqlite3.Connection]:
    """The audit database as an attacker with file access sees it: the append-only triggers
    dropped; committed and closed at the end."""
    conn = sqlite3.connect(auth.data_dir / "authority.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        with conn:
            yield conn
    finally:
        conn.close()


def _delete_tail(auth: Authority, count: int) -> None:
    with _tamper_db(auth) as conn:
        conn.execute(
            "DELETE FROM audit_log WHERE seq > (SELECT MAX(seq) FROM audit_log) - ?", (count,)
        )


def _edit_and_rechain(auth: Authority) -> dict[int, str]:
    """Edit a middle record and re-compute every hash from it on; return the new hashes."""
    new: dict[int, str] = {}
    with _tamper_db(auth) as conn:
        rows = [dict(r) for r in conn.execute("SELECT * FROM audit_log ORDER BY seq")]
        target = rows[len(rows) // 2]["seq"]
        prev = None
        for row in rows:
            if row["seq"] < target:
                prev = row["hash"]
                continue
            if row["seq"] == target:
                row["detail"] = "nothing happened here (edited by the probe)"
            row["prev_hash"] = prev
            row["hash"] = record_hash(row)
            prev = row["hash"]
            new[row["seq"]] = row["hash"]
            conn.execute(
                "UPDATE audit_log SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (row["detail"], row["prev_hash"], row["hash"], row["seq"]),
            )
    return new


def _rewrite_anchor_files(auth: Authority, new: dict[int, str]) -> None:
    journal = auth.data_dir / "audit-head.journal.jsonl"
    lines = []
    for line in journal.read_text().splitlines():
        head = json.loads(line)
        head["hash"] = new.get(head["seq"], head["hash"])
        lines.append(json.dumps({"seq": head["seq"], "hash": head["hash"]}))
    journal.write_text("\n".join(lines) + "\n")
    (auth.data_dir / "audit-head.json").write_text(lines[-1] + "\n")


def _remove_anchor_files(auth: Authority) -> None:
    for name in ("audit-head.json", "audit-head.journal.jsonl"):
        (auth.data_dir / name).unlink()


TAMPERINGS = {
    "delete_last_record": lambda a: _delete_tail(a, 1),
    "truncate_tail_3": lambda a: _delete_tail(a, 3),
    "edit_and_rechain": _edit_and_rechain,
    "full_rewrite_with_anchor_files": lambda a: _rewrite_anchor_files(a, _edit_and_rechain(a)),
    "truncate_tail_3_and_remove_anchor_files": lambda a: (
        _delete_tail(a, 3),
        _remove_anchor_files(a),
    ),
}


def _legit_appends(auth: Authority, count: int) -> None:
    """``count`` audited admin actions through the real server: a login, then listings."""
    token = auth.login("adam", "127.0.0.1")
    with auth.client("127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(count - 1):
            client.get("/v1/users").raise_for_status()


def probe_tampering(root: Path, keys: Secrets, appends: tuple[int, ...]) -> dict[str, Any]:
    base = Authority(root / "tamper-base", keys)
    base.write_config()
    for name, role in (("adam", "admin"), ("audrey", "auditor"), ("ivy", "investigator")):
        base.add_user(name, role)
    base.start()
    token = base.login("adam", "127.0.0.1")
    with base.client("127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(4):
            client.get("/v1/users").raise_for_status()
    audit_token = base.login("audrey", "127.0.0.1")
    with base.client("127.0.0.1", headers={"Authorization": f"Bearer {audit_token}"}) as client:
        client.get("/v1/audit").raise_for_status()
        client.get("/v1/audit/verify").raise_for_status()
    base.stop()
    off_host = root / "off-host-journal-copy.jsonl"
    shutil.copy(base.data_dir / "audit-head.journal.jsonl", off_host)
    head_seq, head_hash = base.head()
    expect_head = f"{head_seq}:{head_hash}"
    base_check = base.verify()
    log.info("tampering base: %d records, verify %s", head_seq, base_check["summary"])

    results = []
    for case, tamper in TAMPERINGS.items():
        for count in appends:
            auth = Authority(root / f"tamper-{case}-{count}", keys)
            shutil.copytree(base.data_dir, auth.data_dir)
            auth.write_config()
            tamper(auth)
            after_tamper = len(auth.audit_records())
            anchor_error = False
            if count:
                auth.start()
                _legit_appends(auth, count)
                auth.stop()
                anchor_error = "audit anchor kept" in auth.log_path.read_text(errors="replace")
            appended = len(auth.audit_records()) - after_tamper
            checks = {"plain": auth.verify(), "anchor_copy": auth.verify("--anchor", str(off_host))}
            if not checks["plain"]["detected"]:
                checks["expect_head"] = auth.verify("--expect-head", expect_head)
            result = {
                "case": case,
                "appends": count,
                "appended_records": appended,
                "server_logged_anchor_error": anchor_error,
                "detected": {name: check["detected"] for name, check in checks.items()},
                "verify": checks,
            }
            log.info("tampering %s + %d appends: detected %s", case, count, result["detected"])
            results.append(result)
            shutil.rmtree(auth.data_dir)
    return {
        "base_records": head_seq,
        "base_verify_valid": not base_check["detected"],
        "off_host_copy": "audit-head.journal.jsonl copied before tampering (--anchor COPY); "
        f"--expect-head {head_seq}:<hash> the head before tampering",
        "legit_append": "an admin login (1 record), then GET /v1/users (1 record each)",
        "cases": results,
    }


# -- 3. flood ---------------------------------------------------------------------------------


def probe_flood(auth: Authority, total: int, threads: int) -> tuple[dict[str, Any], int]:
    """Fire ``total`` garbage-bearer requests; return the figures and the seq before."""
    before = auth.head()[0]
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    share = [total // threads + (i < total % threads) for i in range(threads)]

    def worker(count: int) -> None:
        local: Counter[int] = Counter()
        with auth.client(FLOOD_ADDRESS, headers={"Authorization": "Bearer garbage"}) as client:
            for _ in range(count):
                local[client.get("/v1/me").status_code] += 1
        with lock:
            statuses.update(local)

    pool = [threading.Thread(target=worker, args=(n,)) for n in share]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    during = [r for r in auth.audit_records() if r.seq > before and r.client == FLOOD_ADDRESS]
    return {
        "requests": total,
        "client_threads": threads,
        "route": "GET /v1/me, Authorization: Bearer garbage, from " + FLOOD_ADDRESS,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(total / elapsed, 1),
        "status_counts": dict(statuses),
        "audit_records_before_shutdown": len(during),
    }, before


def flood_after_shutdown(auth: Authority, before: int, total: int) -> dict[str, Any]:
    records = [r for r in auth.audit_records() if r.seq > before and r.client == FLOOD_ADDRESS]
    summed = sum(refusal_count(r) for r in records)
    return {
        "audit_records_after_shutdown": len(records),
        "summed_refusal_count": summed,
        "sum_equals_requests": summed == total,
        "records": [
            {
                "seq": r.seq,
                "action": r.action,
                "outcome": r.outcome,
                "detail": (r.detail or "")[:200],
            }
            for r in records
        ],
    }


# -- 4. lockout -------------------------------------------------------------------------------


def _attempt(client: httpx.Client, user: str, password: str) -> dict[str, Any]:
    response = client.post("/v1/token", data={"username": user, "password": password})
    return {"status": response.status_code, "retry_after": response.headers.get("retry-after")}


def probe_lockout(auth: Authority, admin: str, attempts: int) -> dict[str, Any]:
    right = auth.keys.password("ivy")
    with auth.client(ATTACKER_ADDRESS) as attacker:
        sequence = [_attempt(attacker, "ivy", f"wrong-guess-{i:04d}") for i in range(attempts)]
        attacker_right_while_locked = _attempt(attacker, "ivy", right)
    with auth.client("127.0.0.1") as user:
        real_user = _attempt(user, "ivy", right)
    with auth.client(SETUP_ADDRESS, headers={"Authorization": f"Bearer {admin}"}) as client:
        unlock = client.post("/v1/users/ivy/unlock")
    with auth.client(ATTACKER_ADDRESS) as attacker:
        after_unlock = _attempt(attacker, "ivy", right)
    return {
        "settings": "defaults: 10 token requests/min per address, 5 failures/min per user and "
        "address, lockout 60 s doubling to 3600 s",
        "attacker_address": ATTACKER_ADDRESS,
        "attacker_statuses": [a["status"] for a in sequence],
        "attacker_retry_after": [a["retry_after"] for a in sequence],
        "attacker_right_password_while_locked": attacker_right_while_locked,
        "real_user_from_127.0.0.1": real_user,
        "admin_unlock": {"status": unlock.status_code, "body": unlock.text[:300]},
        "attacker_address_right_password_after_unlock": after_unlock,
    }


def probe_backoff(root: Path, keys: Secrets, lockouts: int = 4) -> dict[str, Any]:
    auth = Authority(
        root / "backoff",
        keys,
        overrides={
            "auth": {
                "login_lockout_s": 1,
                "login_lockout_max_s": 4,
                "login_attempts_per_minute": 1000,
            }
        },
    )
    auth.write_config()
    auth.add_user("ivy", "investigator")
    auth.start()
    waits, statuses = [], []
    started = time.monotonic()
    try:
        with auth.client(ATTACKER_ADDRESS) as attacker:
            while len(waits) < lockouts and time.monotonic() - started < 60:
                result = _attempt(attacker, "ivy", "wrong-guess")
                statuses.append(result["status"])
                if result["status"] == 429:
                    waits.append(int(result["retry_after"]))
                    time.sleep(int(result["retry_after"]) + 0.05)
    finally:
        auth.stop()
    return {
        "settings": "login_lockout_s 1, login_lockout_max_s 4, 5 failures/min per user and address",
        "attacker_statuses": statuses,
        "lockout_retry_after_s": waits,
    }


# -- 5. body limits ---------------------------------------------------------------------------


def _chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"a" * piece


def _multipart_chunks(file_field: str, total: int) -> Iterator[bytes]:
    """A well-formed multipart body (the reason fields, then a file part of ``total`` bytes)
    sent in chunks, so no Content-Length is declared and only counting can refuse it."""
    for name, value in REASON.items():
        yield (
            f'--probe\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    yield (
        f'--probe\r\nContent-Disposition: form-data; name="{file_field}"; filename="big.bin"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield from _chunks(total)
    yield b"\r\n--probe--\r\n"


def _one_by_one_clip(path: Path) -> bytes:
    """A real 3-frame 1x1 FFV1 clip (PyAV's FFV1 with its default options: the edge's lossless
    settings refuse a 1-pixel side)."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 1, 1, "bgr0"
        for _ in range(3):
            picture = av.VideoFrame.from_ndarray(np.zeros((1, 1, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return path.read_bytes()


def probe_body_limits(auth: Authority, investigator: str, root: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}

    def keep(name: str, response: httpx.Response, expected: int) -> None:
        results[name] = {
            "expected": expected,
            "status": response.status_code,
            "body": response.text[:300],
        }

    bearer = {"Authorization": f"Bearer {investigator}"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    multipart_type = {"Content-Type": "multipart/form-data; boundary=probe"}
    with auth.client("127.0.0.1") as client:
        keep(
            "login_chunked_128KiB",
            client.post("/v1/token", content=_chunks(128 << 10), headers=form),
            413,
        )
        keep(
            "login_declared_1MiB",
            client.post("/v1/token", content=b"a" * (1 << 20), headers=form),
            413,
        )
        keep(
            "frame_chunked_2MiB_investigator",
            client.post(
                "/v1/frames:reconstruct",
                content=_multipart_chunks("frame", 2 << 20),
                headers={**bearer, **multipart_type},
            ),
            413,
        )
        keep(
            "frame_chunked_2MiB_anonymous",
            client.post(
                "/v1/frames:reconstruct",
                content=_multipart_chunks("frame", 2 << 20),
                headers=multipart_type,
            ),
            401,
        )
        keep(
            "clip_chunked_8MiB_investigator",
            client.post(
                "/v1/reconstructions",
                content=_multipart_chunks("clip", 8 << 20),
                headers={**bearer, **multipart_type},
            ),
            413,
        )
        keep(
            "clip_chunked_8MiB_anonymous",
            client.post(
                "/v1/reconstructions",
                content=_multipart_chunks("clip", 8 << 20),
                headers=multipart_type,
            ),
            401,
        )
        png = encode_png(np.zeros((1, 1, 3), np.uint8))
        keep(
            "frame_1x1_png",
            client.post(
                "/v1/frames:reconstruct",
                headers=bearer,
                data=REASON,
                files={"frame": ("f.png", png, "image/png")},
            ),
            422,
        )
        clip = _one_by_one_clip(root / "1x1.mkv")
        keep(
            "clip_1x1_ffv1",
            client.post(
                "/v1/reconstructions",
                headers=bearer,
                data=REASON,
                files={"clip": ("c.mkv", clip, "video/x-matroska")},
            ),
            422,
        )
    return {
        "limits": "non-upload routes 64 KiB; max_frame_bytes 1 MiB; max_clip_bytes 4 MiB",
        "cases": results,
    }


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=1000, help="requests of the flood")
    parser.add_argument("--threads", type=int, default=4, help="client threads of the flood")
    parser.add_argument("--attempts", type=int, default=12, help="attacker's wrong passwords")
    parser.add_argument("--appends", default="0,1,5", help="legit appends after tampering")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="uunet-security-probe-"))
    report: dict[str, Any] = {
        "settings": {
            "argon2": "time_cost 1, memory 8 MiB, parallelism 1 (deployed default: 3, 64 MiB, 4)",
            "login_limits": "defaults (10 token requests/min per address, 5 failures/min per user "
            "and address, lockout 60 s doubling to 3600 s)",
            "audit_refusal_window_s": "60 (default)",
            "models": "none (shipped_default false, empty models_dir)",
            "limits": "max_frame_bytes 1 MiB, max_clip_bytes 4 MiB (deployed: 32 MiB, 512 MiB)",
            "server": "uunet-authority --config FILE serve (subprocess), secrets in "
            "$CREDENTIALS_DIRECTORY, users by `uunet-authority user add`",
        }
    }
    keys = Secrets(root / "credentials")
    keys.write()
    try:
        main_auth = Authority(root / "main", keys)
        main_auth.write_config()
        for name, role in (("adam", "admin"), ("audrey", "auditor"), ("ivy", "investigator")):
            main_auth.add_user(name, role)
        report["server_start_s"] = round(main_auth.start(), 2)
        admin = main_auth.login("adam")
        investigator = main_auth.login("ivy")
        try:
            log.info("1. bad tokens")
            report["bad_tokens"] = probe_bad_tokens(main_auth, admin)
            log.info("4. lockout")
            report["lockout"] = probe_lockout(main_auth, admin, args.attempts)
            log.info("5. body limits")
            report["body_limits"] = probe_body_limits(main_auth, investigator, root)
            log.info("3. flood of %d requests", args.flood)
            flood, before = probe_flood(main_auth, args.flood, args.threads)
        finally:
            report["main_server_stop"] = main_auth.stop()
        flood.update(flood_after_shutdown(main_auth, before, args.flood))
        report["flood"] = flood
        report["main_audit_verify_at_end"] = main_auth.verify()
        anchor_errors = [
            line for line in main_auth.log_tail(100000).splitlines() if "ERROR" in line
        ]
        report["main_server_error_lines"] = anchor_errors[:20]
        log.info("4b. lockout back-off")
        report["backoff"] = probe_backoff(root, keys)
        log.info("2. audit tampering")
        appends = tuple(int(n) for n in args.appends.split(","))
        report["audit_tampering"] = probe_tampering(root, keys, appends)
    finally:
        if args.keep:
            log.info("kept %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    report["wall_s"] = round(time.monotonic() - started, 1)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
