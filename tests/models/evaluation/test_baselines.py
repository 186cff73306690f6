import numpy as np
import pytest

from models.evaluation.baselines import (
    DEFAULT_BASELINES,
    deface_blur,
    downup,
    make_baseline,
    pixelate,
    superpixels,
)


@pytest.fixture
def patch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (50, 40, 3)).astype(np.uint8)


@pytest.mark.parametrize("spec", DEFAULT_BASELINES)
def test_every_default_baseline_keeps_patch_sizes(spec, patch):
    method = make_baseline(spec)
    out = method([patch, patch[:20, :30]])
    assert method.name == spec
    assert [o.shape for o in out] == [patch.shape, (20, 30, 3)]
    assert all(o.dtype == np.uint8 for o in out)
    assert not np.array_equal(out[0], patch)


def test_pixelate_has_at_most_cells_squared_colours(patch):
    out = pixelate(patch, 4)
    assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 16


def test_superpixels_paint_at_most_k_colours(patch):
    out = superpixels(patch, 9)
    assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 9


def test_downup_of_constant_patch_is_unchanged():
    flat = np.full((33, 47, 3), 77, np.uint8)
    np.testing.assert_array_equal(downup(flat, 8), flat)


def test_deface_blur_keeps_corners_and_changes_centre(patch):
    out = deface_blur(patch)
    assert np.array_equal(out[0, 0], patch[0, 0]) and np.array_equal(out[-1, -1], patch[-1, -1])
    assert not np.array_equal(out[20:30, 15:25], patch[20:30, 15:25])


@pytest.mark.parametrize("spec", ["blur", "pixelate", "pixelate:x", "pixelate:0", "deface:3"])
def test_make_baseline_bad_spec_raises(spec):
    with pytest.raises(ValueError, match="baseline"):
        make_baseline(spec)


def test_superpixels_are_spatially_compact():
    """On colour noise, SLIC regions stay near their seeds (a colour-only clustering would
    scatter each region over the whole patch)."""
    noise = np.random.default_rng(5).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    out = superpixels(noise, 16)
    for colour in np.unique(out.reshape(-1, 3), axis=0):
        ys, xs = np.nonzero((out == colour).all(axis=2))
        assert np.ptp(ys) < 40 and np.ptp(xs) < 40
