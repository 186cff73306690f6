"""Sealed original faces: exact round trip, and a typed error for every wrong payload."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from shared.geometry import Box
from shared.sealed_faces import (
    EncodedFace,
    FaceDecodeError,
    KeyNotHeldError,
    MalformedPayloadError,
    PayloadAuthenticationError,
    SealContext,
    SealedPayloadError,
    decode_face,
    encode_face,
    open_sealed_faces,
    seal_faces,
    sealed_size,
)
from shared.sealing_keys import SealingPrivateKey

CAMERA_KEY = b"c" * 32
CONTEXT = SealContext("cam-1", "model-a", 41)
BOXES = [Box(3, 5, 37, 29), Box(60, 10, 20, 31)]


def _key() -> SealingPrivateKey:
    return SealingPrivateKey.of(x25519.X25519PrivateKey.generate())


def _faces(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (b.h, b.w, 3), dtype=np.uint8) for b in BOXES]


def _sealed(key: SealingPrivateKey, codec="png", pixels=None, **overrides) -> bytes:
    pixels = _faces() if pixels is None else pixels
    encoded = [EncodedFace(i, codec, encode_face(p, codec, 95)) for i, p in enumerate(pixels)]
    kwargs = {"boxes": BOXES, "context": CONTEXT, "recipients": [key.public]}
    kwargs.update(overrides)
    return seal_faces(encoded, camera_key=CAMERA_KEY, **kwargs)


def _open(data: bytes, key: SealingPrivateKey, **overrides):
    kwargs = {"boxes": BOXES, "context": CONTEXT, "private_keys": {key.key_id: key}}
    kwargs["camera_key"] = CAMERA_KEY
    kwargs.update(overrides)
    return open_sealed_faces(data, **kwargs)


def test_png_faces_come_back_bit_exact_and_the_size_is_predicted():
    key = _key()
    pixels = _faces()
    data = _sealed(key, pixels=pixels)
    opened = _open(data, key)
    assert opened.key_id == key.key_id and opened.mac_verified
    for i, original in enumerate(pixels):
        assert np.array_equal(opened.faces[i], original)
        assert opened.codecs[i] == "png"
    lengths = [len(encode_face(p)) for p in pixels]
    assert sealed_size(lengths, 1) == len(data)


@pytest.mark.parametrize(("codec", "floor_db"), [("jpeg", 30.0), ("webp", 30.0)])
def test_lossy_codecs_open_to_an_image_of_the_box(codec, floor_db):
    key = _key()
    # a smooth face-like gradient (random noise is the worst case for a lossy codec)
    y, x = np.mgrid[0 : BOXES[0].h, 0 : BOXES[0].w]
    smooth = np.stack([x * 6, y * 7, (x + y) * 3], axis=-1).clip(0, 255).astype(np.uint8)
    pixels = [smooth, _faces()[1]]
    opened = _open(_sealed(key, codec, pixels=pixels), key)
    error = opened.faces[0].astype(float) - smooth
    psnr = 10 * np.log10(255**2 / max(np.mean(error**2), 1e-9))
    assert psnr > floor_db
    assert opened.faces[1].shape == (BOXES[1].h, BOXES[1].w, 3)


def test_several_recipients_each_open_it_and_a_rotated_out_key_is_named():
    first, second, retired = _key(), _key(), _key()
    data = _sealed(first, recipients=[first.public, second.public])
    assert np.array_equal(_open(data, second).faces[0], _faces()[0])
    with pytest.raises(KeyNotHeldError) as info:
        _open(data, retired)
    assert set(info.value.key_ids) == {first.key_id, second.key_id}
    assert first.key_id in str(info.value)


def test_without_a_private_key_nothing_opens():
    data = _sealed(_key())
    with pytest.raises(KeyNotHeldError):
        open_sealed_faces(data, BOXES, CONTEXT, {}, CAMERA_KEY)


def test_a_key_that_claims_a_recipients_id_does_not_open_it():
    real, impostor = _key(), _key()
    data = _sealed(real)
    with pytest.raises(PayloadAuthenticationError):
        open_sealed_faces(data, BOXES, CONTEXT, {real.key_id: impostor}, None)


@pytest.mark.parametrize(
    "context",
    [
        SealContext("cam-1", "model-a", 42),  # replayed into the next frame
        SealContext("cam-2", "model-a", 41),  # another camera
        SealContext("cam-1", "model-b", 41),  # another model
        SealContext("cam-1", "model-a", 41, "0123456789abcdef"),  # frame 41 of a run
    ],
)
def test_a_payload_moved_to_another_frame_camera_or_model_fails(context):
    key = _key()
    data = _sealed(key)
    with pytest.raises(PayloadAuthenticationError) as info:
        _open(data, key, context=context)
    assert info.value.field == "mac"
    with pytest.raises(PayloadAuthenticationError) as info:  # no camera key: the AEAD catches it
        _open(data, key, context=context, camera_key=None)
    assert info.value.field == "key"


def test_swapped_faces_or_an_edited_box_fail():
    key = _key()
    data = _sealed(key)
    with pytest.raises(PayloadAuthenticationError):
        _open(data, key, boxes=[BOXES[1], BOXES[0]], camera_key=None)
    moved = [dataclasses.replace(BOXES[0], x=4), BOXES[1]]
    with pytest.raises(PayloadAuthenticationError):
        _open(data, key, boxes=moved, camera_key=None)


def test_a_foreign_camera_key_fails_the_mac():
    key = _key()
    with pytest.raises(PayloadAuthenticationError):
        _open(_sealed(key), key, camera_key=b"d" * 32)


def test_every_flipped_byte_gives_a_typed_error_never_a_face():
    key = _key()
    data = _sealed(key, pixels=[p[:4, :4] for p in _faces()], boxes=BOXES)
    for position in range(0, len(data), max(1, len(data) // 97)):
        broken = bytearray(data)
        broken[position] ^= 0x40
        for camera_key in (CAMERA_KEY, None):
            with pytest.raises(SealedPayloadError):
                _open(bytes(broken), key, camera_key=camera_key)


def test_truncated_or_padded_payloads_are_malformed():
    key = _key()
    data = _sealed(key)
    for cut in (0, 3, 5, 50, len(data) // 2, len(data) - 1):
        with pytest.raises(MalformedPayloadError):
            _open(data[:cut], key)
    with pytest.raises(MalformedPayloadError):
        _open(data + b"\x00", key)


def test_a_face_naming_a_box_the_message_lacks_is_malformed():
    key = _key()
    data = _sealed(key)
    with pytest.raises(MalformedPayloadError):
        _open(data, key, boxes=BOXES[:1])


def test_decode_refuses_an_image_declaring_another_size_before_decoding():
    big = encode_face(np.zeros((4000, 4000, 3), np.uint8))
    with pytest.raises(FaceDecodeError, match="declares"):
        decode_face(big, "png", Box(0, 0, 10, 10))
    for codec in ("png", "jpeg", "webp"):
        data = encode_face(np.zeros((12, 10, 3), np.uint8), codec)
        assert decode_face(data, codec, Box(0, 0, 10, 12)).shape == (12, 10, 3)
        with pytest.raises(FaceDecodeError):
            decode_face(data, codec, Box(0, 0, 12, 10))


def test_seal_refuses_bad_arguments():
    key = _key()
    face = EncodedFace(0, "png", encode_face(_faces()[0]))
    with pytest.raises(ValueError, match="recipients"):
        seal_faces([face], BOXES, CONTEXT, [], CAMERA_KEY)
    with pytest.raises(ValueError, match="indices"):
        seal_faces([face, face], BOXES, CONTEXT, [key.public], CAMERA_KEY)
    with pytest.raises(ValueError, match="indices"):
        seal_faces([dataclasses.replace(face, index=2)], BOXES, CONTEXT, [key.public], CAMERA_KEY)
    with pytest.raises(ValueError, match="codec"):
        encode_face(_faces()[0], "gif")  # type: ignore[arg-type]


def test_the_layout_is_the_documented_one():
    key = _key()
    data = _sealed(key)
    assert data[:4] == b"USF1" and data[4] == 1
    assert data[5:13].hex() == key.key_id
    (wrapped,) = struct.unpack(">H", data[13:15])
    assert wrapped == 80  # X25519 enc (32) + data key (32) + tag (16)


def test_jpeg_keeps_full_colour_resolution():
    # colour blocks with sharp edges: 4:2:0 chroma measured 24 dB here, 4:4:4 39 dB
    blocks = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((6, 6, 1), np.uint8))
    box = Box(0, 0, pixels.shape[1], pixels.shape[0])
    decoded = decode_face(encode_face(pixels, "jpeg", 95), "jpeg", box)
    error = np.mean((decoded.astype(float) - pixels) ** 2)
    assert 10 * np.log10(255**2 / error) > 35.0


def test_a_payload_of_one_run_does_not_open_as_the_same_frame_of_another_run():
    """Before run ids, frame 41 of one start and frame 41 of the next shared a binding."""
    key = _key()
    run_a = SealContext("cam-1", "model-a", 41, "0123456789abcdef")
    data = _sealed(key, context=run_a)
    assert len(_open(data, key, context=run_a).faces) == len(BOXES)
    for other in (dataclasses.replace(run_a, run_id="fedcba9876543210"), CONTEXT):
        with pytest.raises(PayloadAuthenticationError):
            _open(data, key, context=other)


def test_a_context_without_run_id_binds_as_before():
    """Payloads sealed before run ids keep their binding (so they still open)."""
    assert CONTEXT.header().endswith(b"cam-1\x00model-a\x0041\x00")
    run = dataclasses.replace(CONTEXT, run_id="0123456789abcdef")
    assert run.header().endswith(b"cam-1\x00model-a\x000123456789abcdef.41\x00")
