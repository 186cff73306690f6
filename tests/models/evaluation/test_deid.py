import numpy as np
import pytest

from models.evaluation.deid import UUNetCodec
from shared.compositing import Composition, CompositionError
from shared.geometry import Box
from shared.model_dir import ModelDirError
from tests.toy_models import write_toy_model_dir


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    return UUNetCodec(write_toy_model_dir(tmp_path_factory.mktemp("toy")))


def _blocky_frame(seed=1):
    small = np.random.default_rng(seed).integers(0, 256, (120, 160, 3)).astype(np.uint8)
    return np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)


def test_encode_tensors_is_toy_inverse(codec):
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    a = codec.encode_tensors(x)
    np.testing.assert_allclose(a, 1 - x, atol=1e-6)
    np.testing.assert_allclose(codec.decode_tensors(a), x, atol=1e-6)


def test_encode_tensors_wrong_shape_raises(codec):
    with pytest.raises(ValueError, match="N x 3"):
        codec.encode_tensors(np.zeros((1, 3, 32, 32), np.float32))


def test_noise_planes_are_the_edge_banks_and_fresh_ids_differ(codec):
    planes = codec.noise_planes([0, 1])
    assert planes.shape == (2, 1, 64, 64)
    np.testing.assert_array_equal(planes[0, 0], codec.deidentifier.noise.plane(0))
    assert not np.array_equal(planes[0], planes[1])
    first, second = codec.fresh_ids(2), codec.fresh_ids(1)
    assert len(set(first + second)) == 3


def test_round1_frame_round_trip_exact_at_model_size(codec):
    frame = _blocky_frame()
    boxes = [Box(0, 0, 64, 64), Box(128, 64, 128, 128)]
    a = codec.encode_frame(frame, boxes)
    # Round 1 (no composition in the card): hard paste, pixel replication.
    assert np.array_equal(a[0:64, 0:64], 255 - frame[0:64, 0:64])
    assert np.array_equal(a[64:192, 128:256], 255 - frame[64:192, 128:256])
    assert np.array_equal(a[200:, :], frame[200:, :])  # outside the boxes: untouched
    r = codec.decode_frame(a, boxes)
    np.testing.assert_array_equal(r[0:64, 0:64], frame[0:64, 0:64])
    np.testing.assert_array_equal(r[200:, :], frame[200:, :])
    # The authority enlarges r bicubically whatever the model: close, not exact, at 128 px.
    diff = np.abs(r[64:192, 128:256].astype(int) - frame[64:192, 128:256])
    assert 0 < diff.mean() < 40


def test_composition_override_feathers_the_border(codec):
    feathered = codec.with_composition(Composition("smooth", 0.1, (64,)))
    assert feathered.deidentifier.encoder is codec.deidentifier.encoder  # sessions shared
    assert codec.composition.feather == 0.0  # the original is unchanged
    frame = np.full((100, 100, 3), 200, np.uint8)
    a = feathered.encode_frame(frame, [Box(18, 18, 64, 64)])
    assert a[50, 50, 0] == 55  # inside: the toy's 255 - x
    assert 55 < a[18, 50, 0] < 200  # the outermost row: blended into the scene
    assert a[17, 50, 0] == 200  # outside: the scene


def test_composition_of_another_size_raises(codec):
    with pytest.raises(CompositionError, match="input size"):
        codec.with_composition(Composition("smooth", 0.0, (32,)))


def test_encode_patches_keep_sizes_and_match_frame_path(codec):
    patches = [np.zeros((30, 40, 3), np.uint8), np.full((100, 100, 3), 7, np.uint8)]
    out = codec.encode_patches(patches, [0, 1])
    assert [p.shape for p in out] == [(30, 40, 3), (100, 100, 3)]
    alone = codec.encode_frame(patches[1], [Box(0, 0, 100, 100)], [1])
    np.testing.assert_array_equal(out[1], alone)
    assert codec.encode_patches([]) == []


def test_missing_model_dir_raises(tmp_path):
    with pytest.raises(ModelDirError):
        UUNetCodec(tmp_path / "absent")
