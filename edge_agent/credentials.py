"""The edge's secrets, never part of its settings (:mod:`edge_agent.config`): each camera's HMAC
key for v1 messages and the secret the per-track noise planes derive from, each read from the
environment or from systemd's ``$CREDENTIALS_DIRECTORY``."""

from __future__ import annotations

import os
import re

from shared.config_base import read_secret

__all__ = [
    "CAMERA_KEY_ENV",
    "CAMERA_KEY_NAME",
    "NOISE_KEY_ENV",
    "NOISE_KEY_NAME",
    "camera_key",
    "camera_key_env",
    "camera_key_name",
    "noise_key",
]

CAMERA_KEY_ENV = "UUNET_EDGE_CAMERA_KEY"
CAMERA_KEY_NAME = "camera-key"
NOISE_KEY_ENV = "UUNET_EDGE_NOISE_KEY"
NOISE_KEY_NAME = "noise-key"


def camera_key_name(camera_id: str | None = None) -> str:
    """The credential file of a camera's key: ``camera-key`` (one camera per process) or
    ``camera-key-<id>`` (a camera of ``cameras:``)."""
    return CAMERA_KEY_NAME if camera_id is None else f"{CAMERA_KEY_NAME}-{camera_id}"


def camera_key_env(camera_id: str | None = None) -> str:
    """The environment variable of a camera's key: ``UUNET_EDGE_CAMERA_KEY``, or
    ``UUNET_EDGE_CAMERA_KEY_<ID>`` with the id upper-cased and every character other than a
    letter or digit made ``_`` (``lobby-2`` -> ``UUNET_EDGE_CAMERA_KEY_LOBBY_2``)."""
    if camera_id is None:
        return CAMERA_KEY_ENV
    return f"{CAMERA_KEY_ENV}_{re.sub(r'[^A-Z0-9]', '_', camera_id.upper())}"


def camera_key(camera_id: str | None = None) -> bytes:
    """A camera's HMAC key for v1 messages: the process's one camera (``camera_id`` None), or
    the camera ``camera_id`` of ``cameras:`` (:func:`camera_key_env`, :func:`camera_key_name`).

    Raises:
        shared.config_base.SecretNotFoundError: neither the environment variable nor the
            credential file holds one.
    """
    return read_secret(camera_key_name(camera_id), camera_key_env(camera_id))


def noise_key() -> bytes:
    """The secret the per-track noise planes derive from.

    ``$UUNET_EDGE_NOISE_KEY`` or ``$CREDENTIALS_DIRECTORY/noise-key`` when set; otherwise 32
    fresh random bytes per process (the noise only has to be unpredictable and stable along a
    track; nothing downstream needs it). Call it once per process.
    """
    try:
        return read_secret(NOISE_KEY_NAME, NOISE_KEY_ENV)
    except ValueError:
        return os.urandom(32)
