"""edge_agent.sdnotify against a real Unix datagram socket (what systemd listens on)."""

from __future__ import annotations

import os
import socket

from edge_agent.sdnotify import SystemdNotifier


def _socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    return sock, str(path)


def test_ready_status_watchdog_and_stopping_reach_the_socket(tmp_path):
    sock, path = _socket(tmp_path)
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = SystemdNotifier(env)
    assert notifier.enabled and notifier.watchdog_interval == 1.0
    notifier.ready("processing cam")
    assert sock.recv(1024) == b"READY=1\nSTATUS=processing cam"
    notifier.watchdog()
    assert sock.recv(1024) == b"WATCHDOG=1"
    notifier.watchdog()  # within half the interval: no second ping
    notifier.stopping()
    assert sock.recv(1024) == b"STOPPING=1"
    sock.close()


def test_without_notify_socket_everything_is_a_no_op():
    notifier = SystemdNotifier({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert notifier.notify("READY=1") is False
    notifier.watchdog()


def test_watchdog_for_another_pid_is_disabled(tmp_path):
    notifier = SystemdNotifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval is None
