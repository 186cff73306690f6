import numpy as np
import pytest

from models.evaluation.deid import UUNetCodec
from shared.geometry import Box
from shared.model_dir import ModelDirError
from tests.toy_models import write_toy_model_dir


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    return UUNetCodec(write_toy_model_dir(tmp_path_factory.mktemp("toy")))


def test_encode_tensors_is_toy_inverse(codec):
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    a = codec.encode_tensors(x)
    np.testing.assert_allclose(a, 1 - x, atol=1e-6)
    np.testing.assert_allclose(codec.decode_tensors(a), x, atol=1e-6)


def test_encode_tensors_wrong_shape_raises(codec):
    with pytest.raises(ValueError, match="N x 3"):
        codec.encode_tensors(np.zeros((1, 3, 32, 32), np.float32))


def test_frame_round_trip_exact_for_integer_scales(codec):
    rng = np.random.default_rng(1)
    # Content that is constant on 2x2 blocks survives the 128 -> 64 -> 128 resampling exactly.
    small = rng.integers(0, 256, (120, 160, 3)).astype(np.uint8)
    frame = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    boxes = [Box(0, 0, 64, 64), Box(128, 64, 128, 128)]
    a = codec.encode_frame(frame, boxes)
    assert np.array_equal(a[0:64, 0:64], 255 - frame[0:64, 0:64])
    assert np.array_equal(a[200:, :], frame[200:, :])  # outside the boxes: untouched
    r = codec.decode_frame(a, boxes)
    np.testing.assert_array_equal(r, frame)


def test_encode_patches_keep_sizes(codec):
    patches = [np.zeros((30, 40, 3), np.uint8), np.zeros((100, 100, 3), np.uint8)]
    out = codec.encode_patches(patches)
    assert [p.shape for p in out] == [(30, 40, 3), (100, 100, 3)]
    assert codec.encode_patches([]) == []


def test_missing_model_dir_raises(tmp_path):
    with pytest.raises(ModelDirError):
        UUNetCodec(tmp_path / "absent")
