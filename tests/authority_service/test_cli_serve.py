"""uunet-authority serve: the uvicorn server it configures trusts no proxy unless told to."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from authority_service.api.app import create_app
from authority_service.cli import uvicorn_options
from authority_service.config import AuthoritySettings
from authority_service.service import Services, build_services
from tests.authority_service.conftest import (
    PASSWORD,
    SECRETS,
    add_users,
    free_port,
    settings_for,
)


@contextmanager
def serving(settings: AuthoritySettings) -> Iterator[tuple[str, Services]]:
    """The app on a real uvicorn server built from :func:`uvicorn_options`, as ``serve`` does."""
    services = build_services(settings, jwt_key=SECRETS.jwt_key, camera_keys=SECRETS.camera_keys)
    add_users(services)
    app = create_app(settings, SECRETS, services=services)
    server = uvicorn.Server(
        uvicorn.Config(app, **uvicorn_options(settings.server), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://{settings.server.host}:{settings.server.port}", services
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _logins_from_forged_addresses(url: str, count: int) -> list[int]:
    with httpx.Client(base_url=url, timeout=30) as client:
        return [
            client.post(
                "/v1/token",
                data={"username": "ivy", "password": PASSWORD},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            ).status_code
            for i in range(count)
        ]


def _login_clients(services: Services) -> list[str | None]:
    return [r.client for r in services.audit_log.records(limit=1000) if r.action == "login"]


def test_serve_by_default_limits_and_audits_a_local_client_by_its_real_address(
    tmp_path, models_dir
):
    settings = settings_for(
        tmp_path,
        models_dir,
        server={"port": free_port()},
        auth={"login_attempts_per_minute": 3},
    )
    assert settings.server.forwarded_allow_ips == ""
    with serving(settings) as (url, services):
        # Each request claims another client: the limit still counts them as one.
        assert _logins_from_forged_addresses(url, 4) == [200, 200, 200, 429]
        clients = _login_clients(services)
    assert len(clients) >= 3 and set(clients) == {"127.0.0.1"}


def test_serve_honours_forwarded_for_from_a_configured_proxy(tmp_path, models_dir):
    settings = settings_for(
        tmp_path,
        models_dir,
        server={"port": free_port(), "forwarded_allow_ips": "127.0.0.1"},
        auth={"login_attempts_per_minute": 3},
    )
    with serving(settings) as (url, services):
        assert _logins_from_forged_addresses(url, 4) == [200, 200, 200, 200]
        clients = _login_clients(services)
    assert clients == [f"203.0.113.{i}" for i in range(4)]
