"""A throwaway PostgreSQL server for the storage tests: initdb in a temporary directory, 127.0.0.1
and a unix socket in that directory only, a random free port, stopped and removed at the end.

The binaries come from ``$PATH``, ``/usr/local/bin`` or Debian's ``postgresql`` package
(``/usr/lib/postgresql/<N>/bin``, the newest). initdb and postgres refuse to run as root: as
root they run as ``nobody`` (``runuser``), owning only the server's directory.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

#: Set (CI: .ci/run) to fail rather than skip where no PostgreSQL server binary is found.
REQUIRE_ENV_VAR = "UUNET_REQUIRE_POSTGRES"
_SUPERUSER = "postgres"
_UNPRIVILEGED = "nobody"


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or ``None``."""
    candidates = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates.append(Path("/usr/local/bin"))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


@dataclass
class PostgresServer:
    """A running server: the superuser's password, where it listens, how to stop it."""

    bin_dir: Path
    root: Path
    port: int
    password: str
    _as_user: list[str]
    _names = itertools.count(1)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def admin(self) -> psycopg.Connection:
        """A superuser connection (autocommit) over TCP with the password."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=_SUPERUSER,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        )

    def new_database(self) -> str:
        """Create an empty database; return its URL (without the password)."""
        name = f"uunet_test_{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast")
        shutil.rmtree(self.root, ignore_errors=True)


def start_server(bin_dir: Path, port: int) -> PostgresServer:
    """initdb and start a server on ``port`` (password authentication only, fsync off: a test
    server).

    Raises:
        subprocess.CalledProcessError: initdb or pg_ctl failed (their output in the error).
    """
    root = Path(tempfile.mkdtemp(prefix="uunet-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam(_UNPRIVILEGED)
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", _UNPRIVILEGED, "--"]
    password = secrets.token_urlsafe(24)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if as_user:
        os.chown(pwfile, pwd.getpwnam(_UNPRIVILEGED).pw_uid, -1)
    server = PostgresServer(bin_dir, root, port, password, as_user)
    try:
        server._run(
            str(bin_dir / "initdb"),
            "-D",
            str(server.data_dir),
            "-U",
            _SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        pwfile.unlink()
        options = f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        server._run(
            str(bin_dir / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(server.data_dir),
            "-l",
            str(root / "server.log"),
            "-o",
            options,
        )
    except subprocess.CalledProcessError as exc:
        log = root / "server.log"
        detail = log.read_text(errors="replace") if log.exists() else ""
        server.stop()
        raise RuntimeError(
            f"cannot start PostgreSQL: {exc.stderr.decode(errors='replace')}{detail}"
        ) from exc
    return server


@contextlib.contextmanager
def running_server(bin_dir: Path, port: int) -> Iterator[PostgresServer]:
    server = start_server(bin_dir, port)
    try:
        yield server
    finally:
        server.stop()
