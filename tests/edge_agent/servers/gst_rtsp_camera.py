"""A real RTSP camera for tests: Debian's GStreamer RTSP server playing an H.264 MP4 file.

Run with the system Python that has ``python3-gi`` and ``gir1.2-gst-rtsp-server-1.0``:

    /usr/bin/python3 tests/edge_agent/servers/gst_rtsp_camera.py CLIP PORT [--loop]

Serves ``rtsp://127.0.0.1:PORT/camera`` (the file's H.264 stream, not re-encoded; every client
session starts at the first frame) and prints ``READY`` once it listens. SIGTERM stops it.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    clip, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{clip}" ! qtdemux ! h264parse config-interval=-1 '
        "! rtph264pay name=pay0 pt=96 )"
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory("/camera", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("READY", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
