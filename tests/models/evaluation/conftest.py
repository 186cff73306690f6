"""Shared fixtures: real instruments are loaded once per test session (they take seconds)."""

from __future__ import annotations

import pytest

from tests.media import MEDIA_DIR


@pytest.fixture(scope="session")
def yunet():
    from models.evaluation.detectors import edge_detector

    return edge_detector()


@pytest.fixture(scope="session")
def sface():
    from models.evaluation.recognizers import SFaceRecognizer

    return SFaceRecognizer()


@pytest.fixture(scope="session")
def dlib_recognizer():
    pytest.importorskip("dlib")
    from models.evaluation.recognizers import DlibRecognizer

    return DlibRecognizer()


@pytest.fixture(scope="session")
def bbt_faces(yunet):
    """Head crops of 4 people x 3 images of ../shared/media/identities/faceapi_bbt."""
    from models.evaluation.faces import load_identity_faces

    root = MEDIA_DIR / "identities" / "faceapi_bbt"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    return load_identity_faces(root, yunet, max_identities=4, max_per_identity=3)
