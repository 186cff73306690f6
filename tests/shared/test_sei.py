"""shared.sei: the ROI message in H.264 SEI survives real encoding, muxing and decoding."""

from __future__ import annotations

import gc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.sei import (
    UUNET_SEI_UUID,
    SeiError,
    _emulation_prevent,
    build_sei_nal,
    insert_sei,
    messages_from_frame,
    parse_sei_payload,
)
from shared.video_io import LosslessWriter, read_frames


def _unescape(data: bytes) -> bytes:
    return data.replace(b"\x00\x00\x03", b"\x00\x00")


@given(st.text(min_size=1, max_size=600))
def test_build_sei_nal_has_no_start_code_inside_and_round_trips(message):
    nal = build_sei_nal(message)
    assert nal.startswith(b"\x00\x00\x00\x01\x06\x05")
    body = nal[4:]
    assert b"\x00\x00\x00" not in body and b"\x00\x00\x01" not in body
    assert b"\x00\x00\x02" not in body
    rbsp = _unescape(body[2:])
    size, offset = 0, 0
    while rbsp[offset] == 255:
        size, offset = size + 255, offset + 1
    size += rbsp[offset]
    payload = rbsp[offset + 1 : offset + 1 + size]
    assert parse_sei_payload(payload) == message
    assert rbsp[offset + 1 + size :] == b"\x80"


def test_emulation_prevention_escapes_zero_runs():
    assert _emulation_prevent(b"\x00\x00\x00\x00\x01") == b"\x00\x00\x03\x00\x00\x03\x01"
    assert _emulation_prevent(b"\x00\x00\x04") == b"\x00\x00\x04"


def test_insert_sei_goes_before_the_first_slice():
    sps, pps, idr = b"\x00\x00\x00\x01\x67AB", b"\x00\x00\x00\x01\x68CD", b"\x00\x00\x01\x65EF"
    nal = build_sei_nal("m")
    assert insert_sei(sps + pps + idr, nal) == sps + pps + nal + idr
    with pytest.raises(SeiError, match=r"no H\.264 slice"):
        insert_sei(sps + pps, nal)


def test_parse_sei_payload_refuses_other_producers():
    with pytest.raises(SeiError, match="UUID"):
        parse_sei_payload(b"\x00" * 16 + b"x264 settings")
    with pytest.raises(SeiError, match="UTF-8"):
        parse_sei_payload(UUNET_SEI_UUID + b"\xff\xfe")


def _write_x264_clip_with_sei(path: Path, fmt: str) -> None:
    """12 lossy H.264 frames (B-frames on), each carrying ``UU1|cam|m|<pts>|0,|x`` in SEI."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"crf": "30"}  # B-frames on: packets leave in decode order
        stream.time_base = Fraction(1, 15)
        packets = []
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), "rgb24")
            frame.pts = i
            packets += stream.encode(frame)
        packets += stream.encode(None)
        for packet in packets:
            data = insert_sei(bytes(packet), build_sei_nal(f"UU1|cam|m|{packet.pts}|0,|x"))
            out = av.Packet(data)
            out.pts, out.dts, out.time_base = packet.pts, packet.dts, packet.time_base
            out.is_keyframe, out.stream = packet.is_keyframe, stream
            container.mux(out)


@pytest.mark.parametrize(("fmt", "suffix"), [("mp4", "mp4"), ("mpegts", "ts"), ("matroska", "mkv")])
def test_messages_survive_x264_muxing_and_decoding(tmp_path, fmt, suffix):
    path = tmp_path / f"clip.{suffix}"
    _write_x264_clip_with_sei(path, fmt)
    with av.open(str(path)) as container:
        got = [messages_from_frame(f) for f in container.decode(video=0)]
    assert got == [[f"UU1|cam|m|{i}|0,|x"] for i in range(12)]
    # shared.video_io.read_frames (frame-threaded decoding) keeps them with their frames
    assert [f.sei for f in read_frames(path)] == [
        (UUNET_SEI_UUID + f"UU1|cam|m|{i}|0,|x".encode(),) for i in range(12)
    ]


@pytest.mark.parametrize("kind", ["ffv1_evidence", "x264_with_sei"])
def test_read_frames_frees_every_frame_without_the_garbage_collector(tmp_path, kind):
    """Reading a frame's SEI side data must not tie the frame into a reference cycle: such a
    frame, with its FFmpeg picture buffers, waited for a full pass of the cyclic garbage
    collector, thousands of frames later, and the authority grew by every frame it decoded."""
    path = tmp_path / "clip.mkv"
    if kind == "ffv1_evidence":
        with LosslessWriter(path, 64, 48, 15) as writer:
            for i in range(12):
                writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    else:
        _write_x264_clip_with_sei(path, "matroska")
    gc.collect()
    gc.disable()  # what reference counting alone frees
    try:
        sei = [frame.sei for frame in read_frames(path)]
        alive = sum(isinstance(o, av.frame.Frame) for o in gc.get_objects())
    finally:
        gc.enable()
    assert len(sei) == 12
    assert all(sei) == (kind == "x264_with_sei")  # the messages are still read
    assert alive == 0
