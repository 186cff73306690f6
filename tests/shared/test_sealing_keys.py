"""Sealing key files: generated with the right modes, read back, and misuse refused."""

from __future__ import annotations

import stat
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from shared.sealing_keys import (
    SealingKeyError,
    generate_key_pair,
    load_private_key,
    load_public_key,
)


def test_a_generated_pair_loads_and_the_ids_match(tmp_path):
    private_path, public_path = generate_key_pair(tmp_path / "keys")
    assert private_path.name == "authority.key" and public_path.name == "authority.pub"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    private, public = load_private_key(private_path), load_public_key(public_path)
    assert private.key_id == public.key_id and len(public.key_id) == 16
    assert private.public.key_id == public.key_id


def test_openssl_reads_the_files(tmp_path):
    private_path, public_path = generate_key_pair(tmp_path)
    try:
        out = subprocess.run(
            ["openssl", "pkey", "-in", str(private_path), "-pubout"],
            capture_output=True,
            check=True,
        ).stdout
    except FileNotFoundError:
        pytest.skip("openssl is not installed")
    assert out.strip() == public_path.read_bytes().strip()


def test_a_key_is_never_overwritten(tmp_path):
    generate_key_pair(tmp_path)
    before = (tmp_path / "authority.key").read_bytes()
    with pytest.raises(SealingKeyError, match="overwrite"):
        generate_key_pair(tmp_path)
    assert (tmp_path / "authority.key").read_bytes() == before


def test_a_private_key_where_a_public_one_belongs_is_refused(tmp_path):
    private_path, public_path = generate_key_pair(tmp_path)
    with pytest.raises(SealingKeyError, match="PRIVATE key"):
        load_public_key(private_path)
    with pytest.raises(SealingKeyError, match="private key"):
        load_private_key(public_path)


def test_other_key_types_and_garbage_are_refused(tmp_path):
    other = ed25519.Ed25519PrivateKey.generate()
    pem = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "ed.pub").write_bytes(pem)
    with pytest.raises(SealingKeyError, match="not an X25519"):
        load_public_key(tmp_path / "ed.pub")
    (tmp_path / "junk.pub").write_bytes(b"hello")
    with pytest.raises(SealingKeyError, match=r"junk\.pub"):
        load_public_key(tmp_path / "junk.pub")
    with pytest.raises(SealingKeyError, match="cannot read"):
        load_public_key(tmp_path / "missing.pub")
