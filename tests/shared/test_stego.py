"""shared.stego: bit-compatibility with the real stegano package, both ways, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from stegano import lsb

from shared import stego

texts = st.text(min_size=1, max_size=200).filter(lambda s: "\x00" not in s)


@st.composite
def frames(draw: st.DrawFn, min_side: int = 8, max_side: int = 48) -> np.ndarray:
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _fits(frame: np.ndarray, message: str) -> bool:
    return len(message.encode("utf-8")) <= stego.capacity(frame.shape)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(frame=frames(), message=texts)
def test_embed_then_stegano_reveal_reads_message(frame, message):
    if not _fits(frame, message):
        with pytest.raises(stego.MessageTooLargeError):
            stego.embed(frame, message)
        return
    out = stego.embed(frame, message)
    assert lsb.reveal(Image.fromarray(out)) == message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(frame=frames(), message=texts)
def test_stegano_hide_then_extract_reads_message_and_pixels_match(frame, message):
    if not _fits(frame, message):
        return
    hidden = np.asarray(lsb.hide(Image.fromarray(frame), message))
    assert stego.extract(hidden) == message
    # Same bits written in the same places: the two implementations produce identical frames.
    np.testing.assert_array_equal(stego.embed(frame, message), hidden)


def test_embed_leaves_pixels_beyond_message_untouched():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    message = "2,10,16,9,15,25,45,8,14,"
    out = stego.embed(frame, message)
    payload_bits = (len(message) + len("24:")) * 8
    touched_pixels = -(-payload_bits // 3)
    flat_in, flat_out = frame.reshape(-1, 3), out.reshape(-1, 3)
    np.testing.assert_array_equal(flat_out[touched_pixels:], flat_in[touched_pixels:])
    # Inside the message only the LSBs may differ.
    np.testing.assert_array_equal(flat_out[:touched_pixels] >> 1, flat_in[:touched_pixels] >> 1)
    # The input frame is not modified unless asked.
    assert not np.shares_memory(out, frame)


def test_embed_inplace_writes_into_given_frame():
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    out = stego.embed(frame, "abc", inplace=True)
    assert out is frame
    assert stego.extract(frame) == "abc"


def test_embed_inplace_on_strided_view_writes_through():
    base = np.zeros((10, 20, 3), dtype=np.uint8)
    view = base[:, ::2]
    stego.embed(view, "hi", inplace=True)
    assert stego.extract(base[:, ::2]) == "hi"


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 5, 3), (7, 1, 3), (3, 11, 3), (13, 17, 4)])
def test_capacity_matches_what_fits(shape):
    frame = np.full(shape, 77, dtype=np.uint8)
    cap = stego.capacity(shape)
    if cap > 0:
        message = "x" * cap
        out = stego.embed(frame, message)
        assert stego.extract(out) == message
        assert lsb.reveal(Image.fromarray(out)) == message
    with pytest.raises(stego.MessageTooLargeError):
        stego.embed(frame, "x" * (cap + 1))


def test_one_pixel_frame_holds_nothing():
    assert stego.capacity((1, 1, 3)) == 0
    with pytest.raises(stego.MessageTooLargeError):
        stego.embed(np.zeros((1, 1, 3), np.uint8), "a")
    with pytest.raises(stego.NoMessageError):
        stego.extract(np.zeros((1, 1, 3), np.uint8))


def test_huge_message_round_trips_in_1080p_frame():
    frame = np.random.default_rng(2).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    message = "é" * 300_000  # 600 kB of UTF-8
    out = stego.embed(frame, message)
    assert stego.extract(out) == message
    # 777,600 payload bytes minus the 6-digit length and the colon.
    assert stego.capacity(frame.shape) == 1080 * 1920 * 3 // 8 - 7


def test_rgba_frame_keeps_alpha():
    frame = np.random.default_rng(3).integers(0, 256, (9, 9, 4), dtype=np.uint8)
    out = stego.embed(frame, "roi")
    np.testing.assert_array_equal(out[..., 3], frame[..., 3])
    assert lsb.reveal(Image.fromarray(out, "RGBA")) == "roi"
    assert stego.extract(out) == "roi"


def test_extract_from_plain_frame_raises_no_message():
    with pytest.raises(stego.NoMessageError, match="prefix"):
        stego.extract(np.zeros((20, 20, 3), np.uint8))


def test_extract_with_length_beyond_frame_raises():
    frame = stego.embed(np.zeros((20, 20, 3), np.uint8), "abc")
    # Rewrite the length prefix to claim far more than the frame holds.
    forged = np.zeros_like(frame)
    bits = np.unpackbits(np.frombuffer(b"99999:", np.uint8))
    bits = np.concatenate([bits, np.zeros((-bits.size) % 3, np.uint8)])
    forged.reshape(-1)[: bits.size] = bits
    with pytest.raises(stego.NoMessageError, match="exceeds"):
        stego.extract(forged)


def test_extract_non_utf8_body_raises():
    frame = np.zeros((20, 20, 3), np.uint8)
    payload = b"2:\xff\xfe"
    bits = np.unpackbits(np.frombuffer(payload, np.uint8))
    bits = np.concatenate([bits, np.zeros((-bits.size) % 3, np.uint8)])
    frame.reshape(-1)[: bits.size] = bits
    with pytest.raises(stego.NoMessageError, match="UTF-8"):
        stego.extract(frame)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (np.zeros((4, 4), np.uint8), ValueError),
        (np.zeros((4, 4, 2), np.uint8), ValueError),
        (np.zeros((4, 4, 3), np.float32), TypeError),
        ([[0, 0, 0]], TypeError),
    ],
)
def test_bad_frames_raise(frame, error):
    with pytest.raises(error):
        stego.embed(frame, "a")
    with pytest.raises(error):
        stego.extract(frame)


def test_empty_message_refused():
    with pytest.raises(ValueError, match="empty"):
        stego.embed(np.zeros((4, 4, 3), np.uint8), "")
