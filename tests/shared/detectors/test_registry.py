"""shared.detectors.registry: create by key, register plug-ins, clear errors for unknown keys."""

from __future__ import annotations

import numpy as np
import pytest

from shared.detectors import (
    DEFAULT_DETECTOR,
    DetectorNotFoundError,
    DetectorOptions,
    FaceDetector,
    available_detectors,
    create_detector,
    register_detector,
    registry,
)


class _Constant(FaceDetector):
    key = "constant"

    def __init__(self, options=None, *, box=(1.0, 2.0, 11.0, 12.0)):
        super().__init__(options)
        self.box = box

    def _detect(self, frame):
        return [(*self.box, 0.9)]


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTERED", {})


def test_available_detectors_lists_builtins_and_default():
    keys = available_detectors()
    assert {"yunet", "mtcnn", "centerface"} <= set(keys)
    assert DEFAULT_DETECTOR in keys


def test_create_detector_with_unknown_key_lists_known_ones():
    with pytest.raises(DetectorNotFoundError, match=r"unknown detector 'nope'.*yunet"):
        create_detector("nope")


def test_register_detector_then_create_passes_options_and_kwargs(clean_registry):
    register_detector("constant", _Constant)
    detector = create_detector(
        "constant", DetectorOptions(min_face_size=4), box=(0.0, 0.0, 5.0, 5.0)
    )
    assert detector.options.min_face_size == 4
    found = detector.detect(np.zeros((20, 20, 3), np.uint8))
    assert [d.box.as_tuple() for d in found] == [(0, 0, 5, 5)]
    assert "constant" in available_detectors()


def test_register_detector_twice_or_over_builtin_raises(clean_registry):
    register_detector("constant", _Constant)
    with pytest.raises(ValueError, match="already registered"):
        register_detector("constant", _Constant)
    with pytest.raises(ValueError, match="already registered"):
        register_detector("yunet", _Constant)
    register_detector("constant", _Constant, replace=True)
    with pytest.raises(ValueError, match="identifier"):
        register_detector("bad key!", _Constant)
