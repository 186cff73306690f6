"""The ROI message in H.264 SEI (user data unregistered), for lossy public streams.

A lossy codec destroys the LSB message, so a lossy H.264 stream carries each frame's message in
an SEI NAL unit of ``payloadType`` 5 (user data unregistered) placed in the frame's access unit,
right before its first slice: ``UUNET_SEI_UUID`` (16 bytes) followed by the message as UTF-8.
It survives MP4, MPEG-TS, Matroska, HLS and RTSP remuxing, and FFmpeg's decoder returns it as
the frame's ``SEI_UNREGISTERED`` side data (:func:`messages_from_frame`).

The pixels of such a stream are not the ones a v1 tag was computed over, so the tag of a message
read from a lossy stream cannot be verified against those pixels; only the lossless evidence
recording of the same frame verifies it.
"""

from __future__ import annotations

import uuid

from av.frame import Frame
from av.sidedata.sidedata import SideDataContainer

__all__ = [
    "UUNET_SEI_UUID",
    "SeiError",
    "build_sei_nal",
    "insert_sei",
    "messages_from_frame",
    "parse_sei_payload",
    "payloads_from_frame",
]

UUNET_SEI_UUID = uuid.UUID("5b1c0c1e-3f0e-4d8a-9a57-75756e657431").bytes
_START = b"\x00\x00\x00\x01"
_VCL_TYPES = (1, 5)


class SeiError(ValueError):
    """An SEI payload is not a uunet ROI message (wrong UUID, not UTF-8), or a bad packet."""


def _emulation_prevent(rbsp: bytes) -> bytes:
    """Insert ``0x03`` after two zero bytes before any byte ``<= 3`` (H.264 7.4.1)."""
    if b"\x00\x00" not in rbsp:  # nothing to escape (text and base64 never hold two zeros)
        return rbsp
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def build_sei_nal(message: str) -> bytes:
    """An Annex B SEI NAL unit (start code included) carrying ``message``.

    Raises:
        ValueError: an empty message.
    """
    if not message:
        raise ValueError("message must not be empty")
    payload = UUNET_SEI_UUID + message.encode("utf-8")
    body = bytearray([5])  # payloadType 5: user data unregistered
    size = len(payload)
    while size >= 255:
        body.append(255)
        size -= 255
    body.append(size)
    body += payload
    body.append(0x80)  # rbsp_trailing_bits
    return _START + b"\x06" + _emulation_prevent(bytes(body))


def insert_sei(access_unit: bytes, sei_nal: bytes) -> bytes:
    """Insert ``sei_nal`` before the first slice NAL unit of an Annex B access unit.

    Raises:
        SeiError: the data holds no slice NAL unit (not Annex B H.264).
    """
    position = 0
    while True:
        found = access_unit.find(b"\x00\x00\x01", position)
        if found < 0 or found + 3 >= len(access_unit):
            raise SeiError("no H.264 slice in the packet (not an Annex B access unit?)")
        if access_unit[found + 3] & 0x1F in _VCL_TYPES:
            start = found - 1 if found > 0 and access_unit[found - 1] == 0 else found
            return access_unit[:start] + sei_nal + access_unit[start:]
        position = found + 3


def parse_sei_payload(payload: bytes) -> str:
    """The message of one user-data-unregistered payload (UUID + UTF-8 text).

    Raises:
        SeiError: another UUID, or a body that is not UTF-8.
    """
    if payload[:16] != UUNET_SEI_UUID:
        raise SeiError("SEI payload of another producer (UUID differs)")
    try:
        return payload[16:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeiError("uunet SEI payload is not UTF-8") from exc


def payloads_from_frame(frame: Frame) -> list[bytes]:
    """The uunet payloads (UUID + message bytes, not yet decoded) among a decoded PyAV frame's
    ``SEI_UNREGISTERED`` side data. Other producers' SEI (x264 writes its settings in one) are
    skipped.

    The side data is read through a container of its own, never ``frame.side_data``: PyAV
    caches that one on the frame and it refers back to the frame, a reference cycle that leaves
    the frame and its FFmpeg picture buffers to the cyclic garbage collector, whose full passes
    count Python objects, not bytes, and so come thousands of frames apart (an authority
    decoding clip after clip grew by the size of every frame it decoded). This container is
    freed, and the frame with it, as soon as the last reference goes.
    """
    found = []
    for side in SideDataContainer(frame):  # iterating it yields the entries themselves
        if str(getattr(side, "type", "")).endswith("SEI_UNREGISTERED"):
            data = bytes(side)
            if data[:16] == UUNET_SEI_UUID:
                found.append(data)
    return found


def messages_from_frame(frame: Frame) -> list[str]:
    """The uunet messages among a decoded PyAV frame's ``SEI_UNREGISTERED`` side data.

    Raises:
        SeiError: a uunet payload that is not UTF-8.
    """
    return [parse_sei_payload(data) for data in payloads_from_frame(frame)]
