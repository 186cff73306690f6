"""The preview watermark: only its pixels change, its label reads as three lines of text in the
top-left corner, faint copies cover every part of the frame, and any text can be drawn."""

from __future__ import annotations

from datetime import datetime, timezone

import cv2
import numpy as np
import pytest

from authority_service.watermark import Watermark, WatermarkText, ascii_text

MADE = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def test_only_the_watermark_pixels_change_and_the_label_says_who_what_when():
    text = WatermarkText("ivy", "CASE-2024-0042", MADE, "0123456789abcdef01234567")
    assert text.lines() == [
        "viewer ivy",
        "case CASE-2024-0042",
        "preview made 2025-03-04 05:06:07 UTC  job 01234567",
    ]
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    mark = Watermark(text, 640, 480)
    out = mark.apply(frame)
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mark.mask], frame[~mark.mask])
    assert np.any(out != frame, axis=2)[mark.mask].mean() > 0.9
    x, y, w, h = mark.label_box
    label = cv2.cvtColor(out[y : y + h, x : x + w], cv2.COLOR_RGB2GRAY)
    assert label.mean() < 0.6 * cv2.cvtColor(frame[y : y + h, x : x + w], cv2.COLOR_RGB2GRAY).mean()
    assert (label > 240).any()  # white ink on the darkened box
    for quadrant in (mark.mask[240:, :320], mark.mask[:240, 320:], mark.mask[240:, 320:]):
        assert 0.05 < quadrant.mean() < 0.6  # faint copies everywhere, not a solid cover


def test_text_is_made_drawable_and_frames_of_another_size_are_refused():
    assert ascii_text("Ålesund – Zoë") == "Alesund ? Zoe"
    assert ascii_text("x" * 100) == "x" * 61 + "..."
    mark = Watermark(WatermarkText("ivy", "C" * 128, MADE), 16, 16)  # tiny frames draw too
    assert mark.mask.shape == (16, 16)
    with pytest.raises(ValueError, match="expected a 16x16"):
        mark.apply(np.zeros((16, 18, 3), np.uint8))
