"""Fixtures of the authority tests: toy models, settings, evidence clips, a live uvicorn server,
the database backends (SQLite, a throwaway PostgreSQL server: ``$UUNET_TEST_DATABASE``,
:mod:`tests.authority_service.backends`) and a throwaway Redis server (the job queue's broker)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from authority_service.api.app import create_app
from authority_service.config import AuthoritySettings
from authority_service.credentials import DATABASE_PASSWORD_ENV_VAR, AuthoritySecrets
from authority_service.db import Database
from authority_service.sealed import key_ring
from authority_service.service import Services, build_services
from authority_service.users import Role
from shared.geometry import Box
from tests.authority_service.backends import (
    DATABASES,
    URL_ENV_VAR,
    chosen_backend,
    database_settings,
    sqlite_database,
)
from tests.authority_service.edge_role import deidentify_clip, synthetic_frames
from tests.authority_service.postgres import (
    REQUIRE_ENV_VAR,
    PostgresServer,
    find_bin_dir,
    running_server,
)
from tests.authority_service.redis_server import REQUIRE_ENV_VAR as REQUIRE_REDIS_ENV_VAR
from tests.authority_service.redis_server import RedisServer, find_redis_server
from tests.authority_service.redis_server import running_server as running_redis
from tests.authority_service.s3_server import REQUIRE_ENV_VAR as REQUIRE_S3_ENV_VAR
from tests.authority_service.s3_server import S3Server, moto_server_available
from tests.authority_service.s3_server import running_server as running_s3
from tests.toy_models import TOY_MODEL_ID, write_toy_model_dir

CAMERA_ID = "cam-lobby-01"
CAMERA_KEY = b"k3y-of-cam-lobby-01-for-tests-only!"
JWT_KEY = b"jwt-signing-key-for-tests-0123456789-abcdefghijklmnop"
PASSWORD = "correct horse battery staple"
USERS = {
    "ivy": Role.investigator,
    "audrey": Role.auditor,
    "adam": Role.admin,
    "april": Role.approver,
}
# Boxes of the synthetic clip: model size, 2x (integer scale), 1.5x, and smaller than the model.
SYNTHETIC_BOXES = (Box(8, 16, 64, 64), Box(96, 40, 128, 128), Box(230, 20, 80, 80))
SMALL_BOX = Box(250, 170, 40, 48)


def unknown_camera_clip(models_dir: Path, out: Path, frames: int = 1) -> Path:
    """A v1 evidence clip signed by a camera whose key this authority does not hold."""
    return deidentify_clip(
        synthetic_frames(frames),
        lambda i, f: [SYNTHETIC_BOXES[0]],
        models_dir / TOY_MODEL_ID,
        out,
        camera_id="cam-unknown-07",
        key=b"a-key-the-authority-never-saw-0123",
    )


def settings_for(tmp: Path, models_dir: Path, **overrides: Any) -> AuthoritySettings:
    """Fast, test-sized settings (cheap argon2, generous login limit) under ``tmp``, on the
    database ``$UUNET_TEST_DATABASE`` chooses (:func:`.backends.database_settings`) unless
    ``database`` is overridden."""
    values: dict[str, Any] = {
        "data_dir": tmp / "data",
        # No default decoder, whether or not a trained default ships in models/weights.
        "models": {
            "models_dir": models_dir,
            "providers": "cpu",
            "threads": 1,
            "shipped_default": False,
        },
        "messages": {"cameras": [CAMERA_ID]},
        "auth": {
            "argon2_time_cost": 1,
            "argon2_memory_kib": 8192,
            "argon2_parallelism": 1,
            "login_attempts_per_minute": 1000,
            "login_failures_per_user_per_minute": 1000,
        },
        "jobs": {"workers": 1, "sweep_interval_s": 3600},
        # One record per refusal, so a test can read the last one; tests of the aggregation of
        # unauthenticated refusals (test_refusals.py) set a window.
        "audit": {"refusal_window_s": 0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    if "database" not in overrides:
        values.update(database_settings(values["data_dir"]))
    return AuthoritySettings(**values)


SECRETS = AuthoritySecrets(jwt_key=JWT_KEY, camera_keys={CAMERA_ID: CAMERA_KEY})


def add_users(services: Services) -> None:
    for name, role in USERS.items():
        if services.users.get(name) is None:
            services.users.add(name, role, services.passwords.hash(PASSWORD))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session (skipped, or failed with
    ``$UUNET_REQUIRE_POSTGRES``, where its binaries are missing)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = (
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on $PATH, in "
            "/usr/local/bin or /usr/lib/postgresql/<N>/bin"
        )
        if os.environ.get(REQUIRE_ENV_VAR):
            pytest.fail(f"{reason}, and ${REQUIRE_ENV_VAR} is set")
        pytest.skip(reason)
    with running_server(bin_dir, free_port()) as server:
        yield server


@pytest.fixture(scope="session", autouse=True)
def database_backend(request) -> Iterator[str]:
    """The backend of the services the tests build (``$UUNET_TEST_DATABASE``: ``sqlite``, the
    default, or ``postgresql``: a database per data directory on :func:`postgres`, its password
    in the environment for this process and the ones it starts)."""
    try:
        backend = chosen_backend()
    except ValueError as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    if backend == "sqlite":
        yield backend
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(DATABASE_PASSWORD_ENV_VAR, server.password)
        DATABASES.use(server)
        try:
            yield backend
        finally:
            DATABASES.use(None)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One throwaway Redis server for the session (skipped, or failed with
    ``$UUNET_REQUIRE_REDIS``, where ``redis-server`` is missing)."""
    binary = find_redis_server()
    if binary is None:
        reason = "no redis-server on $PATH or in /usr/bin (Debian's redis-server package)"
        if os.environ.get(REQUIRE_REDIS_ENV_VAR):
            pytest.fail(f"{reason}, and ${REQUIRE_REDIS_ENV_VAR} is set")
        pytest.skip(reason)
    with running_redis(binary, free_port()) as server:
        yield server


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """One S3-compatible server (moto's) for the session (skipped, or failed with
    ``$UUNET_REQUIRE_S3``, where ``moto[server]`` is not installed)."""
    if not moto_server_available():
        reason = "moto[server] and boto3 are not installed (the dev extra)"
        if os.environ.get(REQUIRE_S3_ENV_VAR):
            pytest.fail(f"{reason}, and ${REQUIRE_S3_ENV_VAR} is set")
        pytest.skip(reason)
    with running_s3(free_port()) as server:
        yield server


@dataclass(frozen=True)
class DatabaseTarget:
    """An empty database of one backend: its URL (no password in it) and password."""

    backend: str
    url: str
    password: str | None = None

    def open(self) -> Database:
        return Database(self.url, password=self.password)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_target(request, tmp_path) -> DatabaseTarget:
    """An empty database on each backend (the test runs once per backend)."""
    if request.param == "sqlite":
        return DatabaseTarget("sqlite", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    server: PostgresServer = request.getfixturevalue("postgres")
    return DatabaseTarget("postgresql", server.new_database(), server.password)


@pytest.fixture
def database(database_target) -> Iterator[Database]:
    """The database of :func:`database_target`, opened (migrated)."""
    db = database_target.open()
    yield db
    db.close()


@pytest.fixture
def any_backend(database_target, monkeypatch) -> DatabaseTarget:
    """Services built in this test (:func:`settings_for`) use each backend in turn, whatever
    ``$UUNET_TEST_DATABASE`` says: through the environment, as an operator would set
    ``database.url`` and give the password."""
    monkeypatch.setenv(URL_ENV_VAR, database_target.url)
    if database_target.backend == "postgresql":
        monkeypatch.setenv(DATABASE_PASSWORD_ENV_VAR, database_target.password or "")
    return database_target


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A models directory holding the toy pair under its model id."""
    root = tmp_path_factory.mktemp("models")
    write_toy_model_dir(root / TOY_MODEL_ID)
    return root


@pytest.fixture(scope="session")
def evidence_clip(tmp_path_factory, models_dir) -> Path:
    """A small lossless v1 evidence clip of synthetic frames (12 frames, 320x240, 4 boxes)."""
    out = tmp_path_factory.mktemp("evidence") / "synthetic.mkv"

    def boxes_for(index: int, frame) -> list[Box]:
        # Frame 5 has no face (an empty message); the others carry 3 or 4 boxes.
        if index == 5:
            return []
        return [*SYNTHETIC_BOXES, *([SMALL_BOX] if index % 2 else [])]

    return deidentify_clip(
        synthetic_frames(12),
        boxes_for,
        models_dir / TOY_MODEL_ID,
        out,
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """A real uvicorn server on 127.0.0.1 running the app in a background thread."""

    services: Services
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def client_from(self, address: str) -> httpx.Client:
        """A client connecting from ``address`` (another loopback address: another client)."""
        return self.client(transport=httpx.HTTPTransport(local_address=address))

    def token(self, user: str) -> str:
        if user not in self.tokens:
            with self.client() as client:
                response = client.post("/v1/token", data={"username": user, "password": PASSWORD})
                response.raise_for_status()
                self.tokens[user] = response.json()["access_token"]
        return self.tokens[user]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(settings: AuthoritySettings, secrets: AuthoritySecrets = SECRETS) -> LiveServer:
    services = build_services(
        settings,
        jwt_key=secrets.jwt_key,
        camera_keys=secrets.camera_keys,
        sealing_keys=secrets.sealing_keys,
    )
    add_users(services)
    app = create_app(settings, secrets, services=services)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(services, f"http://127.0.0.1:{port}", server, thread)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request, tmp_path_factory, models_dir) -> Iterator[LiveServer]:
    """One live server per test module (its own data directory), on each database backend
    (whatever ``$UUNET_TEST_DATABASE`` says)."""
    root = tmp_path_factory.mktemp("authority")
    overrides = sqlite_database(root / "data")
    with pytest.MonkeyPatch.context() as env:
        if request.param == "postgresql":
            postgres: PostgresServer = request.getfixturevalue("postgres")
            overrides["database"] = {"url": postgres.new_database()}
            env.setenv(DATABASE_PASSWORD_ENV_VAR, postgres.password)
        settings = settings_for(root, models_dir, **overrides)
        server = start_server(settings)
    yield server
    server.stop()


@pytest.fixture
def server_factory(tmp_path, models_dir) -> Iterator[Callable[..., LiveServer]]:
    """Start extra servers with overridden settings (stopped at the end of the test)."""
    started: list[LiveServer] = []

    def make(data_root: Path | None = None, **overrides: Any) -> LiveServer:
        settings = settings_for(data_root or tmp_path, models_dir, **overrides)
        server = start_server(settings)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory, models_dir) -> Iterator[Callable[..., LiveServer]]:
    """Start servers holding the given sealing keys, with overridden settings (stopped at the
    end of the module): ``servers(name, sealing_keys=(), **overrides)``."""
    started: list[LiveServer] = []

    def make(name: str, sealing_keys: Any = (), **overrides: Any) -> LiveServer:
        settings = settings_for(tmp_path_factory.mktemp(name), models_dir, **overrides)
        server = start_server(settings, replace(SECRETS, sealing_keys=key_ring(sealing_keys)))
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def wait_for_job(client: httpx.Client, job_id: str, headers: dict, timeout: float = 60) -> dict:
    """Poll a job until it leaves queued/running; return its last state."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/reconstructions/{job_id}", headers=headers).json()
        if body["status"] not in ("queued", "running"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {body['status']} after {timeout} s")
        time.sleep(0.05)


def reason(case_id: str = "CASE-2024-0042") -> dict[str, str]:
    return {"case_id": case_id, "justification": "Assault on platform 3 at 22:10; suspect ID."}


def assert_no_internals(body: dict) -> None:
    """An error body keeps its code and a sentence, and shows nothing of the server's insides:
    no file path, no errno, no PyJWT or FFmpeg wording."""
    text = " ".join(str(value) for value in body.values())
    assert body.get("error") and body.get("detail"), body
    for leak in ("/", "Errno", "Signature verification", "segments", "Invalid data found"):
        assert leak not in text, (leak, body)
