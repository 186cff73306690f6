"""One strength check for the secrets both sides read: camera HMAC keys and the JWT signing key.

A secret is refused (:class:`WeakSecretError`) when it is

* shorter than the minimum its use needs (16 bytes for a camera key, 32 for the JWT key);
* a placeholder or a documented example: it contains one of :data:`PLACEHOLDERS`
  (case-insensitive; ``demo-camera-key-change-me`` is refused for its ``change-me``) as a word
  of its own (at the start or end, or next to a character that is not a letter or digit), or
  anywhere in a value without capital letters (``mysecretkey2024``). A random base64 key holds
  one of them inside other letters about once in 20,000 (``...tDEMOGoz...``): that is chance,
  not a placeholder, and is accepted;
* low in entropy: fewer than 8 distinct bytes, or fewer than three quarters of the minimum
  length in *unpredictable* bytes. A byte is predictable when it continues a run of constant
  step from the two before it (``aaaa``, ``abcd``, ``9876``) or completes a three-byte sequence
  seen earlier (``abcdefgh`` repeated). Random keys lose about one byte in the alphabet's
  size to this (a 32-character hex key: about 2 of 32).

Generate keys with ``python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`` (or
``openssl rand -hex 32``).
"""

from __future__ import annotations

import re

__all__ = [
    "MIN_DISTINCT_BYTES",
    "PLACEHOLDERS",
    "WeakSecretError",
    "check_secret",
    "unpredictable_bytes",
]

#: Substrings that mark a value as a placeholder or an example copied from documentation.
PLACEHOLDERS = (
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "password",
    "example",
    "default",
    "demo",
)
MIN_DISTINCT_BYTES = 8
_GENERATE_HINT = (
    "generate one, e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
)


class WeakSecretError(ValueError):
    """A secret is present but unfit: too short, a placeholder, or low in entropy."""


def unpredictable_bytes(value: bytes) -> int:
    """How many bytes of ``value`` neither continue a constant-step run nor complete a
    three-byte sequence that occurred earlier (see the module docstring)."""
    seen: set[bytes] = set()
    count = 0
    for i, byte in enumerate(value):
        if i >= 2:
            trigram = value[i - 2 : i + 1]
            run = byte - value[i - 1] == value[i - 1] - value[i - 2]
            repeated = trigram in seen
            seen.add(trigram)
            if run or repeated:
                continue
        count += 1
    return count


def _placeholder_in(text: str) -> str | None:
    """The placeholder word ``text`` holds (see the module docstring), or ``None``."""
    lowered = text.lower()
    anywhere = text == lowered  # no capital letter: typed by a person, not generated
    for word in PLACEHOLDERS:
        for match in re.finditer(re.escape(word), lowered):
            before = lowered[match.start() - 1] if match.start() else ""
            after = lowered[match.end()] if match.end() < len(lowered) else ""
            if anywhere or not (before.isalnum() or after.isalnum()):
                return word
    return None


def check_secret(name: str, value: bytes, minimum: int) -> None:
    """Refuse ``value`` (the secret called ``name``) when it is too short, a placeholder or
    low in entropy; return quietly otherwise. The value never appears in the message.

    Raises:
        WeakSecretError: the first problem found, naming the secret.
    """
    if len(value) < minimum:
        raise WeakSecretError(
            f"secret {name!r} is {len(value)} bytes; at least {minimum} bytes needed"
        )
    word = _placeholder_in(value.decode("utf-8", "replace"))
    if word is not None:
        raise WeakSecretError(
            f"secret {name!r} looks like a placeholder (contains {word!r}); {_GENERATE_HINT}"
        )
    needed = (3 * minimum + 3) // 4
    if len(set(value)) < MIN_DISTINCT_BYTES or unpredictable_bytes(value) < needed:
        raise WeakSecretError(
            f"secret {name!r} is low in entropy (repeated or sequential characters); "
            f"{_GENERATE_HINT}"
        )
