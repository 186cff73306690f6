"""Per-track noise planes of ``Ue``, derived from a secret so a surrogate face is stable.

:class:`NoiseBank` gives each track (of :class:`shared.tracking.IouTracker`) its own ``U(0,1)``
noise plane, derived from a secret and the track id with HMAC-SHA256, so ``Ue``'s surrogate face
stays the same along a track instead of flickering frame to frame, and cannot be predicted
without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import numpy as np

__all__ = ["NoiseBank"]


class NoiseBank:
    """Per-track ``U(0,1)`` noise planes of ``size x size``, stable for a track id.

    The plane of track ``i`` is drawn by numpy's PCG64 seeded with
    ``HMAC-SHA256(secret, "uunet-noise" NUL size NUL i)``.

    Raises:
        ValueError: an empty secret or a size below 1.
    """

    def __init__(self, secret: bytes, size: int) -> None:
        if not secret:
            raise ValueError("the noise secret must not be empty")
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._secret = secret
        self.size = size
        self._planes: dict[int, np.ndarray] = {}

    def plane(self, track_id: int, size: int | None = None) -> np.ndarray:
        """The ``float32`` noise plane of a track (cached until :meth:`forget`).

        ``size`` (a multiple of the bank's size, for a model run at a larger size) enlarges
        the plane by pixel replication, so the surrogate keeps its identity when a track's
        face grows into the next model size (the model reads block means of the plane).

        Raises:
            ValueError: ``size`` is not a multiple of the bank's size.
        """
        if size is not None and size != self.size:
            if size % self.size:
                raise ValueError(f"plane size {size} is not a multiple of {self.size}")
            factor = size // self.size
            return np.repeat(np.repeat(self.plane(track_id), factor, axis=0), factor, axis=1)
        plane = self._planes.get(track_id)
        if plane is None:
            message = b"uunet-noise\x00%d\x00%d" % (self.size, track_id)
            seed = int.from_bytes(hmac.new(self._secret, message, hashlib.sha256).digest(), "big")
            rng = np.random.Generator(np.random.PCG64(seed))
            plane = rng.random((self.size, self.size), dtype=np.float32)
            self._planes[track_id] = plane
        return plane

    def forget(self, track_ids: Sequence[int]) -> None:
        """Drop the cached planes of ended tracks."""
        for track_id in track_ids:
            self._planes.pop(track_id, None)
