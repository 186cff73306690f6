"""shared.secrets_check: one strength check for camera keys and the JWT key."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest

from shared.roi_message import MIN_KEY_BYTES
from shared.secrets_check import WeakSecretError, check_secret, unpredictable_bytes

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (b"short-7Qx", "at least 16"),
        (b"demo-camera-key-change-me", "placeholder"),  # the README's old demo key
        (b"my-Camera-Secret-4711-xyz", "placeholder"),
        (b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "entropy"),
        (b"abcdefghabcdefghabcdefghabcdefgh", "entropy"),  # 8 distinct bytes, repeated
        (b"01234567890123456789012345678901", "entropy"),
        (b"abcdefghijklmnopqrstuvwxyz012345", "entropy"),  # all distinct, but one run
        (b"qwerty12qwerty12qwerty12", "entropy"),
    ],
)
def test_check_secret_weak_value_is_refused_without_showing_it(value, match):
    with pytest.raises(WeakSecretError, match=match) as info:
        check_secret("camera-key", value, MIN_KEY_BYTES)
    assert "camera-key" in str(info.value)
    assert value.decode() not in str(info.value)


def test_check_secret_generated_keys_pass():
    for _ in range(200):
        check_secret("camera-key", secrets.token_hex(32).encode(), MIN_KEY_BYTES)
        check_secret("camera-key", secrets.token_urlsafe(32).encode(), MIN_KEY_BYTES)
        check_secret("camera-key", os.urandom(MIN_KEY_BYTES), MIN_KEY_BYTES)
        check_secret("jwt-signing-key", secrets.token_urlsafe(48).encode(), 32)


def test_check_secret_minimum_length_scales_the_entropy_floor():
    # 17 unpredictable bytes are enough for a camera key (16) but not for a JWT key (32).
    value = b"Zq8-Lw7pZ2kR8mT4n" + b"0123456789abcdefghijklmnop"
    assert unpredictable_bytes(value) < 24
    check_secret("camera-key", value, MIN_KEY_BYTES)
    with pytest.raises(WeakSecretError, match="entropy"):
        check_secret("jwt-signing-key", value, 32)


def test_readme_demo_command_generates_a_key_that_passes():
    command = (REPO / "README.md").read_text().split("UUNET_EDGE_CAMERA_KEY=", 1)[1]
    expression = re.match(r"(\$\(.*?\)) ", command).group(1)
    result = subprocess.run(
        ["bash", "-c", f"printf %s {expression}"], capture_output=True, check=True, timeout=30
    )
    assert "demo-camera-key-change-me" not in (REPO / "README.md").read_text()
    check_secret("camera-key", result.stdout, MIN_KEY_BYTES)


def test_a_random_key_that_happens_to_spell_a_placeholder_is_accepted():
    # a token_urlsafe(32) seen refused before: "demo" inside other letters is chance
    check_secret("camera-key", b"i0bmwWN3tCxtvaH6aOCt_O2uoyqPI5tDEMOGoz90ecw", MIN_KEY_BYTES)


@pytest.mark.parametrize(
    "value",
    [
        b"demo-camera-key-change-me",
        b"Camera-Key-DEMO-x7Qp9Lm2",
        b"mysecretkey2024-z8w",
        b"Q7mZ_Default_k2Rw9Tp4",
    ],
)
def test_placeholder_words_standing_alone_or_in_a_lowercase_value_are_refused(value):
    with pytest.raises(WeakSecretError, match="placeholder"):
        check_secret("camera-key", value, MIN_KEY_BYTES)
