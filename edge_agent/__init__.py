"""uunet edge agent: camera in, de-identified, sealed public stream out (fail-closed daemon).

Pipeline: capture thread -> detect (``shared.detectors``) -> IoU tracker (per-track noise) ->
``Ue`` in ONNX Runtime on head ROIs -> paste -> ROI message sealed in the LSBs -> outputs
(lossless evidence segments, RTSP, HLS). See ``edge_agent/README.md``.
"""

__version__ = "0.1.0"
