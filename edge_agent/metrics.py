"""``/metrics`` (Prometheus text format) and ``/healthz`` on a local port, in a thread.

``/healthz`` answers 200 with a JSON status while frames keep leaving the pipeline (or the
agent is still starting), 503 when none has for ``stale_after_s`` seconds (a stalled camera,
a hung stage) or the agent is stopping. A multi-camera process serves one server for all its
cameras: every metric is labelled ``camera``, ``/healthz`` gives each camera's status under
``cameras`` and answers 503 while any camera is stale (``/healthz?camera=ID``: that camera's
alone, 404 for an unknown id).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from edge_agent.stats import Stats, StatsCollector

__all__ = ["MetricsServer"]

log = logging.getLogger(__name__)


class MetricsServer:
    """Serve ``/metrics`` and ``/healthz`` for a :class:`~edge_agent.stats.Stats`, or for the
    cameras of a multi-camera process (a mapping of camera id to its stats; ``extra_health``
    then returns a mapping of camera id to that camera's extra fields).

    Raises (from the constructor):
        OSError: the address cannot be bound (port in use, bad host).
    """

    def __init__(
        self,
        stats: Stats | Mapping[str, Stats],
        host: str = "127.0.0.1",
        port: int = 9108,
        *,
        stale_after_s: float = 10.0,
        extra_health: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.stats = stats
        self.stale_after_s = stale_after_s
        self.extra_health = extra_health
        self.stopping = False
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(StatsCollector(stats))
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    body = generate_latest(server.registry)
                    self._send(200, CONTENT_TYPE_LATEST, body)
                elif self.path.split("?")[0] == "/healthz":
                    query = parse_qs(urlsplit(self.path).query)
                    camera = query.get("camera", [None])[0]
                    try:
                        healthy, status = server.health(camera)
                    except KeyError:
                        self._send(404, "text/plain", b"unknown camera\n")
                        return
                    self._send(
                        200 if healthy else 503, "application/json", json.dumps(status).encode()
                    )
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, content_type: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http: " + format, *args)

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.address = self._httpd.server_address
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", self.address[0], self.port)
        return self

    def health(self, camera: str | None = None) -> tuple[bool, dict[str, Any]]:
        """``(healthy, status)`` as ``/healthz`` reports it (one camera's with ``camera``).

        Raises:
            KeyError: ``camera`` is not one of this server's cameras.
        """
        extra = self.extra_health() if self.extra_health is not None else {}
        if isinstance(self.stats, Stats):
            if camera is not None:
                raise KeyError(camera)
            healthy, status = self._health_of(self.stats)
            return healthy, status | extra
        if camera is not None:
            healthy, status = self._health_of(self.stats[camera])
            return healthy, status | extra.get(camera, {})
        cameras = {}
        all_healthy = not self.stopping
        for name, stats in self.stats.items():
            healthy, status = self._health_of(stats)
            cameras[name] = status | extra.get(name, {})
            all_healthy = all_healthy and healthy
        state = "ok" if all_healthy else ("stopping" if self.stopping else "degraded")
        return all_healthy, {"status": state, "cameras": cameras}

    def _health_of(self, stats: Stats) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        last = stats.last_frame_at
        since = None if last is None else round(now - last, 3)
        reference = stats.started_at if last is None else last
        healthy = not self.stopping and now - reference <= self.stale_after_s
        status: dict[str, Any] = {
            "status": "ok" if healthy else ("stopping" if self.stopping else "stale"),
            "seconds_since_last_frame": since,
            "fps": round(stats.fps(), 2),
            "frames_emitted": int(stats.get("frames_emitted")),
            "fail_closed": int(stats.get("fail_closed")),
        }
        return healthy, status

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
