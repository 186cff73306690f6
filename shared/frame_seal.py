"""Seal a public frame with its ROI message (edge) and open it again (authority).

Sealing = format the message (v1 with its tag, or the paper's plain one) and hide it in the
frame's LSBs. Opening = extract, parse with the frame's size as bounds, and verify the v1 tag
with the camera's key when one is known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from shared import stego
from shared.geometry import Box
from shared.roi_message import (
    MessageAuthenticationError,
    RoiMessage,
    format_paper,
    format_v1,
    parse_message,
    verify_v1,
)

__all__ = ["MessageFormat", "open_frame", "seal_frame"]

MessageFormat = Literal["v1", "paper"]


def seal_frame(
    frame: np.ndarray,
    boxes: Sequence[Box],
    *,
    message_format: MessageFormat = "v1",
    camera_id: str | None = None,
    model_id: str | None = None,
    frame_index: int | None = None,
    key: bytes | None = None,
    sealed: bytes | None = None,
    inplace: bool = False,
    run_id: str | None = None,
) -> tuple[np.ndarray, str]:
    """Embed the ROI message for ``boxes`` into ``frame``; return the frame and the message.

    ``sealed`` (v1 only) is the frame's sealed-faces payload (:mod:`shared.sealed_faces`),
    carried in the message's ``sealed`` field and covered by its tag. ``run_id`` (v1 only) is
    the edge's run id (:func:`shared.roi_message.new_run_id`), written in the frame field.

    For ``v1`` the tag is computed over ``frame`` as given, with its LSB plane cleared, so the
    embedding that follows (LSBs only) keeps it valid.

    Raises:
        ValueError: v1 without camera id, model id, frame index or key; an unknown format;
            a sealed payload with the paper format (which has no place for it).
        shared.roi_message.RoiMessageError: a bad id or a box outside the frame.
        shared.stego.MessageTooLargeError: the message does not fit in the frame.
    """
    if message_format == "v1":
        if camera_id is None or model_id is None or frame_index is None or key is None:
            raise ValueError("a v1 message needs camera_id, model_id, frame_index and key")
        text = format_v1(
            boxes,
            camera_id=camera_id,
            model_id=model_id,
            frame_index=frame_index,
            key=key,
            frame=frame,
            sealed=sealed,
            run_id=run_id,
        )
    elif message_format == "paper":
        if sealed is not None:
            raise ValueError("the paper's message format has no place for sealed faces (use v1)")
        height, width = frame.shape[:2]
        for box in boxes:
            box.check_inside(width, height)
        text = format_paper(boxes)
    else:
        raise ValueError(f"unknown message format {message_format!r} (use 'v1' or 'paper')")
    return stego.embed(frame, text, inplace=inplace), text


def open_frame(
    frame: np.ndarray,
    camera_keys: Mapping[str, bytes] | None = None,
    *,
    require_authentication: bool = True,
) -> RoiMessage:
    """Read and check the ROI message of a public frame.

    A v1 message is verified when ``camera_keys`` holds its camera's key. With
    ``require_authentication`` (the default) every message must be v1 and verified (a
    paper-format message, or a camera without a known key, is refused); without it such a
    message is read unverified.

    Raises:
        shared.stego.NoMessageError: the frame carries no LSB message.
        shared.roi_message.RoiMessageError: malformed, boxes outside the frame, or (subclass
            :class:`~shared.roi_message.MessageAuthenticationError`) a bad tag / unverifiable.
    """
    text = stego.extract(frame)
    height, width = frame.shape[:2]
    message = parse_message(text, (width, height))
    keys = camera_keys or {}
    if message.version == "1":
        key = keys.get(message.camera_id or "")
        if key is not None:
            verify_v1(message, key, frame)
        elif require_authentication:
            raise MessageAuthenticationError(
                f"no key is configured for camera {message.camera_id!r}", "camera"
            )
    elif require_authentication:
        raise MessageAuthenticationError(
            "a paper-format message carries no tag and authentication is required", "version"
        )
    return message
