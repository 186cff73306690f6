"""edge_agent.metrics over a real HTTP server: /metrics in Prometheus format, /healthz."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from edge_agent.metrics import MetricsServer
from edge_agent.stats import Stats


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def server():
    stats = Stats()
    server = MetricsServer(stats, "127.0.0.1", 0, stale_after_s=1.0).start()
    yield server
    server.close()


def test_metrics_exposes_counters_labels_fps_and_latency(server):
    stats = server.stats
    stats.count("frames_processed", 3)
    stats.fail_closed("detect", "black")
    stats.dropped("capture", 2)
    stats.observe("detect", 0.012)
    stats.frame_emitted()
    time.sleep(0.01)
    stats.frame_emitted()
    status, body = _get(f"http://127.0.0.1:{server.port}/metrics")
    assert status == 200
    assert "uunet_edge_frames_processed_total 3.0" in body
    assert 'uunet_edge_fail_closed_total{action="black",stage="detect"} 1.0' in body
    assert 'uunet_edge_frames_dropped_total{stage="capture"} 2.0' in body
    assert 'uunet_edge_stage_latency_seconds_bucket{le="0.025",stage="detect"} 1.0' in body
    assert 'uunet_edge_stage_latency_seconds_count{stage="detect"} 1.0' in body
    fps = [line for line in body.splitlines() if line.startswith("uunet_edge_fps ")]
    assert fps and float(fps[0].split()[1]) > 0


def test_healthz_ok_while_frames_flow_then_stale_then_stopping(server):
    server.stats.frame_emitted()
    status, body = _get(f"http://127.0.0.1:{server.port}/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    time.sleep(1.2)
    status, body = _get(f"http://127.0.0.1:{server.port}/healthz")
    assert status == 503 and json.loads(body)["status"] == "stale"
    server.stats.frame_emitted()
    server.stopping = True
    status, body = _get(f"http://127.0.0.1:{server.port}/healthz")
    assert status == 503 and json.loads(body)["status"] == "stopping"
    assert _get(f"http://127.0.0.1:{server.port}/nothing")[0] == 404


def test_port_in_use_raises_oserror(server):
    with pytest.raises(OSError):
        MetricsServer(Stats(), "127.0.0.1", server.port)


def test_cameras_of_one_process_share_one_server_with_a_camera_label_and_health_each():
    lobby, gate = Stats(), Stats()
    server = MetricsServer({"lobby": lobby, "gate": gate}, "127.0.0.1", 0, stale_after_s=1.0)
    server.extra_health = lambda: {"lobby": {"source_connected": True}}
    server.start()
    try:
        lobby.count("frames_processed", 3)
        gate.count("frames_processed", 5)
        gate.fail_closed("detect", "black")
        lobby.observe("detect", 0.012)
        status, body = _get(f"http://127.0.0.1:{server.port}/metrics")
        assert status == 200
        assert 'uunet_edge_frames_processed_total{camera="lobby"} 3.0' in body
        assert 'uunet_edge_frames_processed_total{camera="gate"} 5.0' in body
        assert (
            'uunet_edge_fail_closed_total{action="black",camera="gate",stage="detect"} 1.0' in body
        )
        assert 'uunet_edge_stage_latency_seconds_count{camera="lobby",stage="detect"} 1.0' in body
        assert body.count("# TYPE uunet_edge_frames_processed_total counter") == 1
        time.sleep(1.2)
        lobby.frame_emitted()  # the lobby's frames flow, the gate's stopped
        status, body = _get(f"http://127.0.0.1:{server.port}/healthz")
        report = json.loads(body)
        assert status == 503 and report["status"] == "degraded"
        assert report["cameras"]["lobby"]["status"] == "ok"
        assert report["cameras"]["lobby"]["source_connected"] is True
        assert report["cameras"]["gate"]["status"] == "stale"
        status, body = _get(f"http://127.0.0.1:{server.port}/healthz?camera=lobby")
        assert status == 200 and json.loads(body)["frames_emitted"] == 1
        assert _get(f"http://127.0.0.1:{server.port}/healthz?camera=gate")[0] == 503
        assert _get(f"http://127.0.0.1:{server.port}/healthz?camera=nope")[0] == 404
    finally:
        server.close()
