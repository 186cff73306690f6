"""edge_agent.noise: the noise plane of a track is stable, secret-bound and track-specific."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.noise import NoiseBank


def test_noise_plane_is_stable_per_track_and_differs_between_tracks_and_secrets():
    bank = NoiseBank(b"secret-a", 64)
    plane = bank.plane(3)
    assert plane.shape == (64, 64) and plane.dtype == np.float32
    assert plane.min() >= 0.0 and plane.max() < 1.0
    assert abs(float(plane.mean()) - 0.5) < 0.05
    np.testing.assert_array_equal(NoiseBank(b"secret-a", 64).plane(3), plane)
    assert not np.array_equal(bank.plane(4), plane)
    assert not np.array_equal(NoiseBank(b"secret-b", 64).plane(3), plane)
    bank.forget([3])
    np.testing.assert_array_equal(bank.plane(3), plane)


def test_noise_bank_refuses_empty_secret():
    with pytest.raises(ValueError, match="secret"):
        NoiseBank(b"", 64)
