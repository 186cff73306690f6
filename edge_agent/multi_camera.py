"""Several cameras in one edge process (``cameras:`` in the settings).

Each camera is the single-camera agent of :mod:`edge_agent.app`, built from
:func:`edge_agent.config.camera_settings` (its own source, outputs, privacy zones, camera id,
HMAC key and statistics) and run in its own thread; what they share is what costs memory and
start-up time: one ``Ue`` session (ONNX Runtime runs concurrent calls on one session), the
model's privacy check, one ``/metrics`` and ``/healthz`` server whose samples carry a
``camera`` label, and the systemd notifier. Each camera has its own detector instance (OpenCV's
detectors keep per-call state) and its own tracker and noise bank; the noise secret of a camera
is derived from the process's (``HMAC-SHA256(noise_key, "camera:" + id)``), so track 1 of one
camera and track 1 of another get different surrogates.

One camera's failure never stops the others: a live source that drops is reconnected by that
camera's capture thread (its back-off, its counters), a source that ends or gives up ends that
camera alone, and an unexpected error in a camera's run is logged, counted
(``uunet_edge_camera_restarts_total{camera=...}``) and that camera alone is rebuilt and
restarted after ``source.reconnect_max_s``. The frames of every camera go through the same
fail-closed frame path as a single camera's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.app import EdgeAgent, RunResult, build_agent, load_checked_encoder
from edge_agent.config import EdgeSettings, camera_settings
from edge_agent.credentials import camera_key, camera_key_name, noise_key
from edge_agent.metrics import MetricsServer
from edge_agent.sdnotify import SystemdNotifier
from edge_agent.stats import Stats
from shared.roi_message import MIN_KEY_BYTES
from shared.secrets_check import check_secret

__all__ = ["CameraRun", "MultiCameraAgent", "build_multi_camera_agent", "camera_noise_secret"]

log = logging.getLogger(__name__)


def camera_noise_secret(noise_secret: bytes, camera_id: str) -> bytes:
    """The noise secret of one camera of a multi-camera process (module docstring)."""
    return hmac.new(noise_secret, b"camera:" + camera_id.encode(), hashlib.sha256).digest()


@dataclass
class CameraRun:
    """One camera of the process: its settings, agent, statistics and last result."""

    name: str
    settings: EdgeSettings
    stats: Stats
    agent: EdgeAgent
    build: Callable[[], EdgeAgent]
    result: RunResult | None = None
    restarts: int = 0

    @property
    def camera_id(self) -> str:
        return self.settings.camera.id


class MultiCameraAgent:
    """The cameras of one process; use :func:`build_multi_camera_agent` to make one."""

    def __init__(
        self,
        settings: EdgeSettings,
        cameras: list[CameraRun],
        *,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.settings = settings
        self.cameras = cameras
        self.notifier = notifier or SystemdNotifier()
        self.metrics: MetricsServer | None = None
        self._stop = threading.Event()
        self.stop_reason = ""

    def stop(self, reason: str = "stop requested") -> None:
        """Ask every camera to finish (safe from a signal handler)."""
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()
        for camera in self.cameras:
            camera.agent.stop(reason)

    def _run_camera(self, camera: CameraRun) -> None:
        while not self._stop.is_set():
            try:
                camera.result = camera.agent.run()
                return
            except Exception:  # one camera's failure never stops the others
                log.exception("camera %s failed; restarting it alone", camera.camera_id)
                camera.stats.count("camera_restarts")
                camera.restarts += 1
            if self._stop.wait(camera.settings.source.reconnect_max_s):
                return
            try:
                camera.agent = camera.build()
            except Exception:
                log.exception("camera %s cannot be rebuilt; it stays down", camera.camera_id)
                return

    def run(self) -> dict[str, RunResult]:
        """Run every camera until each one's source ends (file sources), ``max_frames``, or
        :meth:`stop`; return each camera's :class:`~edge_agent.app.RunResult` by camera id (a
        camera that could not be rebuilt after a failure reports ``stopped: failed``).

        Raises:
            OSError: the metrics port cannot be bound.
        """
        settings = self.settings
        by_id = {camera.camera_id: camera for camera in self.cameras}
        if settings.metrics.enabled:
            self.metrics = MetricsServer(
                {camera_id: camera.stats for camera_id, camera in by_id.items()},
                settings.metrics.host,
                settings.metrics.port,
                stale_after_s=settings.metrics.stale_after_s,
                extra_health=lambda: {
                    camera_id: {
                        "source_connected": camera.agent.source_connected,
                        "restarts": camera.restarts,
                    }
                    for camera_id, camera in by_id.items()
                },
            ).start()
        threads = [
            threading.Thread(
                target=self._run_camera, args=(camera,), name=f"camera-{camera.camera_id}"
            )
            for camera in self.cameras
        ]
        self.notifier.ready(f"processing {len(self.cameras)} cameras")
        try:
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                # The process is alive while its supervisor loop is: one camera's hang is that
                # camera's /healthz status, not a reason for systemd to restart every camera.
                self.notifier.watchdog()
                for thread in threads:
                    thread.join(timeout=0.5)
        finally:
            self.stop(self.stop_reason or "stopping")
            for thread in threads:
                thread.join()
            self.notifier.stopping()
            if self.metrics is not None:
                self.metrics.stopping = True
                self.metrics.close()
        return {
            camera.camera_id: camera.result or RunResult(0, "failed", camera.stats.snapshot(), None)
            for camera in self.cameras
        }


def build_multi_camera_agent(
    settings: EdgeSettings,
    *,
    notifier: SystemdNotifier | None = None,
) -> MultiCameraAgent:
    """Check every camera of ``settings.cameras`` and assemble the process: ``Ue`` loaded
    once, after its card passed ``settings.privacy``; each camera's key read and checked
    (:func:`edge_agent.credentials.camera_key` with its id) and its agent built.

    Raises:
        ValueError: ``settings.cameras`` is empty.
        The errors of :func:`edge_agent.app.build_agent`, for the first camera that cannot be
        built, with a note naming it (``exc.__notes__``).
    """
    if not settings.cameras:
        raise ValueError("no cameras: in the settings (a single camera runs with build_agent)")
    encoder = load_checked_encoder(settings)
    process_notifier = notifier or SystemdNotifier()
    root_noise = noise_key()
    cameras = []
    for name in settings.cameras:
        single = camera_settings(settings, name)
        camera_id = single.camera.id
        try:
            key = None
            if settings.seal.message_format == "v1":
                key = camera_key(camera_id)
                check_secret(camera_key_name(camera_id), key, MIN_KEY_BYTES)
            stats = Stats()

            def build(
                single: EdgeSettings = single,
                stats: Stats = stats,
                key: bytes | None = key,
                camera_id: str = camera_id,
            ) -> EdgeAgent:
                return build_agent(
                    single,
                    stats=stats,
                    notifier=SystemdNotifier(environ={}),  # READY/STOPPING: the process's
                    key=key,
                    noise_secret=camera_noise_secret(root_noise, camera_id),
                    encoder=encoder,
                )

            cameras.append(CameraRun(name, single, stats, build(), build))
        except Exception as exc:
            exc.add_note(f"camera {name!r} (id {camera_id!r})")
            raise
    log.info(
        "%d cameras (%s), model %s shared",
        len(cameras),
        ", ".join(camera.camera_id for camera in cameras),
        encoder[1].model_id,
    )
    return MultiCameraAgent(settings, cameras, notifier=process_notifier)
