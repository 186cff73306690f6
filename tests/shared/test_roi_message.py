"""shared.roi_message: the paper's grammar, the v1 extension, and strict errors."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.geometry import Box
from shared.roi_message import (
    BoxOutOfFrameError,
    MessageAuthenticationError,
    MessageFormatError,
    RoiMessageError,
    UnknownVersionError,
    format_paper,
    format_v1,
    new_run_id,
    parse_message,
    parse_paper,
    parse_v1,
    sealed_field_length,
    verify_v1,
)

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def _frame(seed: int = 0, shape: tuple[int, int, int] = (120, 160, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_parse_paper_reads_the_papers_example():
    assert parse_paper("2,10,16,9,15,25,45,8,14,") == [Box(10, 16, 9, 15), Box(25, 45, 8, 14)]


def test_format_paper_writes_the_papers_example():
    assert format_paper([Box(10, 16, 9, 15), Box(25, 45, 8, 14)]) == "2,10,16,9,15,25,45,8,14,"


def test_no_faces_is_zero_comma():
    assert format_paper([]) == "0,"
    assert parse_paper("0,") == []


boxes_strategy = st.lists(
    st.builds(
        Box,
        st.integers(0, 10**6),
        st.integers(0, 10**6),
        st.integers(1, 10**4),
        st.integers(1, 10**4),
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(boxes=boxes_strategy)
def test_paper_round_trip(boxes):
    assert parse_paper(format_paper(boxes)) == boxes


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "count"),
        ("2,10,16,9,15,25,45,8,14", "message"),  # no trailing comma
        ("2,10,16,9,15,", "count"),  # count says 2, one box follows
        ("1,10,16,9,15,25,45,8,14,", "count"),  # one box too many
        ("1,-1,16,9,15,", "box 1 x"),
        ("1,10,16,x,15,", "box 1 w"),
        ("1,10,16,9,0,", "box 1 h"),  # zero height
        ("1,10,16,0,5,", "box 1 w"),  # zero width
        ("1,010,16,9,15,", "box 1 x"),  # leading zero
        ("1, 10,16,9,15,", "box 1 x"),  # whitespace
        ("1,10,16,9,15,,", "box 2 x"),  # empty field / trailing garbage
        ("1,10,16,9,15,abc", "message"),  # trailing garbage
        ("1,10,16,9,1.5,", "box 1 h"),
        ("1,10,16,9,+5,", "box 1 h"),
        ("1,10,16,9,1234567890,", "box 1 h"),  # too many digits
        ("99999,", "count"),
        ("a,", "count"),
        ("1,10,16,9,١٥,", "box 1 h"),  # non-ASCII digits
    ],
)
def test_parse_paper_malformed_raises_naming_field(text, field):
    with pytest.raises(MessageFormatError) as info:
        parse_paper(text)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_parse_paper_box_outside_frame_raises():
    with pytest.raises(BoxOutOfFrameError) as info:
        parse_paper("2,10,16,9,15,25,45,8,14,", frame_size=(32, 64))
    assert info.value.field == "box 2"
    assert parse_paper("1,0,0,32,64,", frame_size=(32, 64)) == [Box(0, 0, 32, 64)]
    with pytest.raises(BoxOutOfFrameError):
        parse_paper("1,0,0,33,64,", frame_size=(32, 64))


def test_parse_paper_rejects_non_text():
    with pytest.raises(MessageFormatError):
        parse_paper(b"0,")  # type: ignore[arg-type]


def _v1(frame: np.ndarray, boxes: list[Box], frame_index: int = 7, key: bytes = KEY) -> str:
    return format_v1(
        boxes,
        camera_id="cam-01",
        model_id="a1b2c3d4e5f60718",
        frame_index=frame_index,
        key=key,
        frame=frame,
    )


def test_v1_round_trip_and_verify():
    frame = _frame()
    boxes = [Box(10, 16, 9, 15), Box(25, 45, 8, 14)]
    text = _v1(frame, boxes)
    assert text.startswith("UU1|cam-01|a1b2c3d4e5f60718|7|2,10,16,9,15,25,45,8,14,|")
    message = parse_v1(text, frame_size=(160, 120))
    assert message.boxes == tuple(boxes)
    assert (message.version, message.camera_id, message.model_id, message.frame_index) == (
        "1",
        "cam-01",
        "a1b2c3d4e5f60718",
        7,
    )
    verify_v1(message, KEY, frame)
    assert parse_message(text) == message


def test_v1_tag_ignores_lsb_plane_but_not_picture():
    frame = _frame()
    message = parse_v1(_v1(frame, [Box(1, 2, 3, 4)]))
    verify_v1(message, KEY, frame ^ 1)  # only LSBs changed: still valid
    altered = frame.copy()
    altered[50, 60, 1] ^= 2  # one bit above the LSB plane
    with pytest.raises(MessageAuthenticationError) as info:
        verify_v1(message, KEY, altered)
    assert info.value.field == "tag"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("|7|", "|8|"),  # frame index changed
        lambda t: t.replace("1,1,2,3,4,", "1,1,2,3,5,"),  # box changed
        lambda t: t.replace("cam-01", "cam-02"),  # camera changed
        lambda t: t.replace("a1b2c3d4e5f60718", "a1b2c3d4e5f60719"),  # model changed
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # tag changed
    ],
)
def test_v1_altered_message_fails_verification(mutate):
    frame = _frame()
    text = mutate(_v1(frame, [Box(1, 2, 3, 4)]))
    with pytest.raises(MessageAuthenticationError):
        verify_v1(parse_v1(text), KEY, frame)


def test_v1_wrong_key_or_other_frame_fails():
    frame = _frame()
    message = parse_v1(_v1(frame, [Box(1, 2, 3, 4)]))
    with pytest.raises(MessageAuthenticationError):
        verify_v1(message, OTHER_KEY, frame)
    with pytest.raises(MessageAuthenticationError):
        verify_v1(message, KEY, _frame(seed=1))
    with pytest.raises(MessageAuthenticationError):
        verify_v1(message, KEY, frame[:, :-1])  # same pixels, other shape


@pytest.mark.parametrize(
    ("text", "error", "field"),
    [
        ("UU2|c|m|1|0,|" + "0" * 32, UnknownVersionError, "version"),
        ("UU1|c|m|1|0,", MessageFormatError, "message"),  # missing tag
        ("UU1|c|m|1|0,|" + "0" * 31, MessageFormatError, "tag"),
        ("UU1|c|m|1|0,|" + "A" * 32, MessageFormatError, "tag"),  # uppercase hex
        ("UU1|c|m|1|0,|" + "0" * 32 + "|x", UnknownVersionError, "sealed"),  # not "S1:..."
        ("UU1|c|m|1|0,|S1:AAAA|" + "0" * 32 + "|x", MessageFormatError, "message"),
        ("UU1|c|m|1|0,|S1:A+/=|" + "0" * 32, MessageFormatError, "sealed"),  # not base64url
        ("UU1|c|m|1|0,|S1:AAAAA|" + "0" * 32, MessageFormatError, "sealed"),  # 4n+1 chars
        ("UU1|c|m|1|0,|S1:|" + "0" * 32, MessageFormatError, "sealed"),
        ("UU1|c|m|1|0,|S2:AAAA|" + "0" * 32, UnknownVersionError, "sealed"),
        ("UU1||m|1|0,|" + "0" * 32, MessageFormatError, "camera"),
        ("UU1|c d|m|1|0,|" + "0" * 32, MessageFormatError, "camera"),
        ("UU1|c|" + "m" * 65 + "|1|0,|" + "0" * 32, MessageFormatError, "model"),
        ("UU1|c|m|-1|0,|" + "0" * 32, MessageFormatError, "frame"),
        ("UU1|c|m|01|0,|" + "0" * 32, MessageFormatError, "frame"),
        ("UU1|c|m|1|1,0,0,5,|" + "0" * 32, MessageFormatError, "count"),
        ("UU1|c|m|1|1,0,0,500,5,|" + "0" * 32, BoxOutOfFrameError, "box 1"),
    ],
)
def test_parse_v1_malformed_raises_naming_field(text, error, field):
    with pytest.raises(error) as info:
        parse_message(text, frame_size=(160, 120))
    assert info.value.field == field
    assert isinstance(info.value, RoiMessageError)


def test_format_v1_refuses_bad_inputs():
    frame = _frame()
    with pytest.raises(ValueError, match="key"):
        format_v1([], camera_id="c", model_id="m", frame_index=0, key=b"short", frame=frame)
    with pytest.raises(MessageFormatError):
        format_v1([], camera_id="c|d", model_id="m", frame_index=0, key=KEY, frame=frame)
    with pytest.raises(MessageFormatError):
        format_v1([], camera_id="c", model_id="m", frame_index=-1, key=KEY, frame=frame)
    with pytest.raises(BoxOutOfFrameError):
        format_v1(
            [Box(150, 0, 20, 20)], camera_id="c", model_id="m", frame_index=0, key=KEY, frame=frame
        )


def test_verify_refuses_paper_message():
    with pytest.raises(MessageAuthenticationError):
        verify_v1(parse_message("0,"), KEY, _frame())


@pytest.mark.parametrize("payload", [b"\x00", b"\xff\xfe\xfd", bytes(range(256)) * 3])
def test_a_sealed_payload_round_trips_and_is_covered_by_the_tag(payload):
    frame = _frame()
    boxes = [Box(10, 10, 20, 20)]
    text = format_v1(
        boxes, camera_id="cam-1", model_id="m", frame_index=7, key=KEY, frame=frame, sealed=payload
    )
    message = parse_message(text, frame_size=(160, 120))
    assert message.sealed == payload
    assert len(text) - len(
        format_v1(boxes, camera_id="cam-1", model_id="m", frame_index=7, key=KEY, frame=frame)
    ) == sealed_field_length(len(payload))
    verify_v1(message, KEY, frame)
    other = bytes([payload[0] ^ 1]) + payload[1:]
    with pytest.raises(MessageAuthenticationError):
        verify_v1(dataclasses.replace(message, sealed=other), KEY, frame)
    with pytest.raises(MessageAuthenticationError):  # the field removed
        verify_v1(dataclasses.replace(message, sealed=None), KEY, frame)


def test_a_message_without_sealed_field_parses_as_before():
    frame = _frame()
    text = format_v1(
        [Box(1, 2, 3, 4)], camera_id="c", model_id="m", frame_index=0, key=KEY, frame=frame
    )
    assert text.count("|") == 5
    message = parse_message(text)
    assert message.sealed is None
    verify_v1(message, KEY, frame)


def test_format_v1_refuses_an_empty_sealed_payload():
    with pytest.raises(ValueError, match="empty sealed"):
        format_v1(
            [], camera_id="c", model_id="m", frame_index=0, key=KEY, frame=_frame(), sealed=b""
        )


RUN_A, RUN_B = "0123456789abcdef", "fedcba9876543210"


def _run_v1(frame: np.ndarray, run_id: str | None, frame_index: int = 5) -> str:
    return format_v1(
        [Box(1, 2, 3, 4)],
        camera_id="cam-01",
        model_id="m",
        frame_index=frame_index,
        key=KEY,
        frame=frame,
        run_id=run_id,
    )


def test_v1_run_id_round_trips_in_the_frame_field():
    frame = _frame()
    text = _run_v1(frame, RUN_A)
    assert text.startswith(f"UU1|cam-01|m|{RUN_A}.5|1,1,2,3,4,|")
    message = parse_message(text, frame_size=(160, 120))
    assert (message.run_id, message.frame_index) == (RUN_A, 5)
    verify_v1(message, KEY, frame)
    assert len(new_run_id()) == 16 and new_run_id() != new_run_id()


def test_frame_n_of_run_a_is_not_valid_as_frame_n_of_run_b_or_of_no_run():
    """Before run ids, frame 5 of one start and frame 5 of the next were interchangeable."""
    frame = _frame()
    message = parse_v1(_run_v1(frame, RUN_A))
    for run_id in (RUN_B, None):
        with pytest.raises(MessageAuthenticationError):
            verify_v1(dataclasses.replace(message, run_id=run_id), KEY, frame)
    with pytest.raises(MessageAuthenticationError):
        verify_v1(parse_v1(_run_v1(frame, RUN_A).replace(RUN_A, RUN_B)), KEY, frame)
    assert _run_v1(frame, RUN_A)[-32:] != _run_v1(frame, RUN_B)[-32:]


def test_a_message_written_before_run_ids_still_parses_and_verifies():
    """A v1 text without a run id, its tag computed here from the documented definition."""
    frame = _frame()
    signed = "UU1|cam-01|m|5|1,1,2,3,4,|"
    mac = hmac.new(KEY, b"uunet-roi-v1\x00" + signed.encode(), hashlib.sha256)
    mac.update(b"\x00120x160x3\x00" + (frame & 0xFE).tobytes())
    text = signed + mac.hexdigest()[:32]
    message = parse_message(text)
    assert (message.run_id, message.frame_index, message.signed_text) == (None, 5, signed)
    verify_v1(message, KEY, frame)
    assert _run_v1(frame, None) == text  # and without a run id the edge writes it the same


@pytest.mark.parametrize(
    "frame_field",
    [f"{RUN_A.upper()}.5", f"{RUN_A[:-1]}.5", f"{RUN_A}.", f"{RUN_A}.05", ".5", f"{RUN_A}5"],
)
def test_parse_v1_refuses_a_malformed_run_id_naming_the_frame(frame_field):
    with pytest.raises(MessageFormatError) as info:
        parse_v1(f"UU1|c|m|{frame_field}|0,|" + "0" * 32)
    assert info.value.field == "frame"


@pytest.mark.parametrize("run_id", ["", "0123", RUN_A.upper(), RUN_A + "0", 7])
def test_format_v1_refuses_a_bad_run_id(run_id):
    with pytest.raises(MessageFormatError) as info:
        _run_v1(_frame(), run_id)
    assert info.value.field == "run"
