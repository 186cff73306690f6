"""The authority's sealing key pairs (X25519): generated, written, read, and named by key id.

The authority holds the private keys; every camera holds only the public ones, to which it
seals each replaced face's original pixels (:mod:`shared.sealed_faces`). A stolen camera
therefore opens nothing it recorded.

Files are PEM, readable by OpenSSL: the private key PKCS #8 (``authority.key``, mode 0600), the
public key SubjectPublicKeyInfo (``authority.pub``). A key's **key id** is the first 8 bytes of
the SHA-256 of its raw 32-byte public key, as 16 lowercase hex characters; sealed payloads name
their recipients by it, which is how an authority holding several keys (rotation) picks the
right one and how an error names the key a payload needs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from shared.private_files import PRIVATE_FILE_MODE, open_private

__all__ = [
    "KEY_ID_BYTES",
    "PRIVATE_KEY_NAME",
    "PUBLIC_KEY_NAME",
    "SealingKeyError",
    "SealingPrivateKey",
    "SealingPublicKey",
    "generate_key_pair",
    "key_id_of",
    "load_private_key",
    "load_public_key",
    "parse_private_key",
    "parse_public_key",
]

KEY_ID_BYTES = 8
PRIVATE_KEY_NAME = "authority.key"
PUBLIC_KEY_NAME = "authority.pub"
_MAX_KEY_FILE_BYTES = 16 * 1024


class SealingKeyError(ValueError):
    """A sealing key file is missing, unreadable, not an X25519 key of the expected kind (a
    private key where a public one belongs, or the reverse), or would overwrite a key."""


def key_id_of(public_key: x25519.X25519PublicKey) -> str:
    """The key id of ``public_key`` (16 lowercase hex characters)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:KEY_ID_BYTES].hex()


@dataclass(frozen=True)
class SealingPublicKey:
    """A recipient of sealed faces: the X25519 public key and its key id."""

    key: x25519.X25519PublicKey
    key_id: str

    @classmethod
    def of(cls, key: x25519.X25519PublicKey) -> SealingPublicKey:
        return cls(key, key_id_of(key))


@dataclass(frozen=True)
class SealingPrivateKey:
    """An authority's X25519 private key and the key id of its public half."""

    key: x25519.X25519PrivateKey
    key_id: str

    @classmethod
    def of(cls, key: x25519.X25519PrivateKey) -> SealingPrivateKey:
        return cls(key, key_id_of(key.public_key()))

    @property
    def public(self) -> SealingPublicKey:
        return SealingPublicKey.of(self.key.public_key())


def generate_key_pair(out_dir: str | Path) -> tuple[Path, Path]:
    """Write a new key pair as ``out_dir/authority.key`` (0600) and ``out_dir/authority.pub``.

    Returns:
        The private and the public key's paths.

    Raises:
        SealingKeyError: either file exists already (a key is never overwritten).
        OSError: the folder cannot be created or written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / PRIVATE_KEY_NAME, out / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise SealingKeyError(f"{path} exists: refusing to overwrite a sealing key")
    key = x25519.X25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with open_private(private_path, "xb", PRIVATE_FILE_MODE) as handle:
        handle.write(private_pem)
    with open(public_path, "xb") as handle:
        handle.write(public_pem)
    os.chmod(public_path, 0o644)
    return private_path, public_path


def _read(path: str | Path, what: str) -> bytes:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SealingKeyError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise SealingKeyError(f"{path} is {len(data)} bytes: not a {what} file")
    return data


def parse_public_key(data: bytes, source: str = "public key") -> SealingPublicKey:
    """Read a PEM (or DER) X25519 public key.

    Raises:
        SealingKeyError: not a public key, a private key, or a key of another type; ``source``
            names it in the message.
    """
    if b"PRIVATE KEY" in data:
        raise SealingKeyError(
            f"{source} holds a PRIVATE key: a camera must only ever hold the authority's "
            "public key (authority.pub)"
        )
    try:
        loaded = (
            serialization.load_pem_public_key(data)
            if data.lstrip().startswith(b"-----")
            else serialization.load_der_public_key(data)
        )
    except ValueError as exc:
        raise SealingKeyError(f"{source} is not a PEM or DER public key: {exc}") from exc
    if not isinstance(loaded, x25519.X25519PublicKey):
        raise SealingKeyError(f"{source} is a {type(loaded).__name__}, not an X25519 key")
    return SealingPublicKey.of(loaded)


def parse_private_key(data: bytes, source: str = "private key") -> SealingPrivateKey:
    """Read a PEM (or DER) PKCS #8 X25519 private key (unencrypted).

    Raises:
        SealingKeyError: not a private key, or a key of another type.
    """
    try:
        loaded = (
            serialization.load_pem_private_key(data, password=None)
            if data.lstrip().startswith(b"-----")
            else serialization.load_der_private_key(data, password=None)
        )
    except (ValueError, TypeError) as exc:
        raise SealingKeyError(f"{source} is not an unencrypted PKCS #8 private key: {exc}") from exc
    if not isinstance(loaded, x25519.X25519PrivateKey):
        raise SealingKeyError(f"{source} is a {type(loaded).__name__}, not an X25519 key")
    return SealingPrivateKey.of(loaded)


def load_public_key(path: str | Path) -> SealingPublicKey:
    """Read a public key file (``authority.pub``).

    Raises:
        SealingKeyError: see :func:`parse_public_key`; also an unreadable file.
    """
    return parse_public_key(_read(path, "public key"), str(path))


def load_private_key(path: str | Path) -> SealingPrivateKey:
    """Read a private key file (``authority.key``).

    Raises:
        SealingKeyError: see :func:`parse_private_key`; also an unreadable file.
    """
    return parse_private_key(_read(path, "private key"), str(path))
