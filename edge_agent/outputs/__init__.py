"""Where sealed public frames go: lossless evidence segments, RTSP, HLS.

Which outputs keep what:

=============  =========================================  ============  ===============
output         encoding                                   LSB message   pixels
=============  =========================================  ============  ===============
evidence       FFV1 (``.mkv``) or libx264rgb qp 0         kept          exact
rtsp           libx264rgb qp 0, RGB, sliced-threads=0     kept          exact
hls            libx264rgb qp 0 in fMP4 + RGB colour tags  kept          exact
lossy          libx264 yuv420p CRF, message in SEI        in SEI        approximate
=============  =========================================  ============  ===============

Every output runs behind a :class:`~edge_agent.outputs.base.ThreadedSink`: its own thread and
a bounded queue that drops the oldest frame (counted) when the output cannot keep up, so a
slow disk or network never stalls the camera.
"""

from edge_agent.outputs.base import FrameSink, SinkError, StreamFormat, ThreadedSink

__all__ = ["FrameSink", "SinkError", "StreamFormat", "ThreadedSink"]
