"""shared.frame_seal: seal a frame on one side, open and verify it on the other."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from stegano import lsb

from shared import stego
from shared.frame_seal import open_frame, seal_frame
from shared.geometry import Box, BoxOutsideFrameError
from shared.roi_message import MessageAuthenticationError, parse_paper

KEY = bytes(range(32))
BOXES = [Box(10, 16, 9, 15), Box(25, 45, 8, 14)]


def _frame() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (90, 120, 3), dtype=np.uint8)


def _seal_v1(frame: np.ndarray) -> np.ndarray:
    sealed, _ = seal_frame(frame, BOXES, camera_id="cam1", model_id="m1", frame_index=3, key=KEY)
    return sealed


def test_v1_sealed_frame_opens_and_verifies():
    message = open_frame(_seal_v1(_frame()), {"cam1": KEY}, require_authentication=True)
    assert message.boxes == tuple(BOXES) and message.frame_index == 3 and message.model_id == "m1"


def test_paper_format_is_readable_by_stegano_as_the_papers_message():
    sealed, text = seal_frame(_frame(), BOXES, message_format="paper")
    assert text == "2,10,16,9,15,25,45,8,14,"
    assert parse_paper(lsb.reveal(Image.fromarray(sealed))) == BOXES
    assert open_frame(sealed, require_authentication=False).boxes == tuple(BOXES)
    with pytest.raises(MessageAuthenticationError, match="paper-format"):
        open_frame(sealed)  # unverifiable: refused by default


def test_tampered_picture_is_detected():
    sealed = _seal_v1(_frame())
    sealed[40:50, 40:50] //= 2  # someone edits the picture
    with pytest.raises(MessageAuthenticationError):
        open_frame(sealed, {"cam1": KEY})


def test_unknown_camera_refused_only_when_authentication_required():
    sealed = _seal_v1(_frame())
    assert open_frame(sealed, {"other": KEY}, require_authentication=False).camera_id == "cam1"
    with pytest.raises(MessageAuthenticationError, match="no key"):
        open_frame(sealed, {"other": KEY})


def test_paper_message_refused_when_authentication_required():
    sealed, _ = seal_frame(_frame(), BOXES, message_format="paper")
    with pytest.raises(MessageAuthenticationError):
        open_frame(sealed, {"cam1": KEY}, require_authentication=True)


def test_frame_without_message_raises():
    with pytest.raises(stego.NoMessageError):
        open_frame(np.zeros((90, 120, 3), np.uint8))


def test_seal_refuses_incomplete_v1_and_boxes_outside():
    with pytest.raises(ValueError, match="needs"):
        seal_frame(_frame(), BOXES, camera_id="cam1", model_id="m1", frame_index=3)
    with pytest.raises(BoxOutsideFrameError):
        seal_frame(_frame(), [Box(100, 0, 30, 10)], message_format="paper")
    with pytest.raises(ValueError, match="unknown message format"):
        seal_frame(_frame(), BOXES, message_format="v2")  # type: ignore[arg-type]
