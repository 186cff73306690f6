"""models.data.jitter.VideoJitter: views differ a little, smoothly, deterministically."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.jitter import VideoJitter
from models.data.synthetic import make_synthetic_faces


@pytest.fixture(scope="module")
def face():
    return make_synthetic_faces(1, 1, 1, size=64, seed=4).image(0)


def mad(a, b):
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_views_differ_but_only_a_little(face):
    clip = VideoJitter().clip(face, 6, seed=11)
    steps = [mad(clip[k], clip[k + 1]) for k in range(5)]
    assert all(s > 0.5 for s in steps), steps  # every frame changes
    assert max(mad(v, face) for v in clip) < 25.0  # but stays close to the image (0-255 scale)
    # Two unrelated faces differ far more than two jittered views of one face.
    other = make_synthetic_faces(2, 1, 1, size=64, seed=5).image(1)
    assert mad(face, other) > 2 * max(steps)


def test_views_drift_smoothly_along_the_clip():
    jitter = VideoJitter(frame_noise=0.0)
    p = [jitter.params(7, v, 5) for v in range(5)]
    for key in ("shift_x", "scale", "rotation", "brightness"):
        deltas = np.diff([q[key] for q in p])
        assert np.allclose(deltas, deltas[0], atol=1e-9)  # a straight path, equal steps


def test_jitter_is_deterministic_and_seed_dependent(face):
    j = VideoJitter()
    assert np.array_equal(j.view(face, 3, 2, 4), j.view(face, 3, 2, 4))
    assert np.array_equal(j.clip(face, 4, 3)[2], j.view(face, 3, 2, 4))
    assert not np.array_equal(j.view(face, 3, 2, 4), j.view(face, 4, 2, 4))


def test_jitter_argument_errors(face):
    with pytest.raises(ValueError):
        VideoJitter(max_scale=0.6)
    with pytest.raises(ValueError):
        VideoJitter(max_blur_sigma=-1)
    with pytest.raises(ValueError, match="outside"):
        VideoJitter().view(face, 0, 4, 4)
