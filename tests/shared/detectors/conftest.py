"""Helpers for the detector tests: real photos from ../shared/media as RGB arrays."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from shared.geometry import Box
from tests.media import MEDIA_DIR


def load_rgb(relative: str) -> np.ndarray:
    image = cv2.imread(str(MEDIA_DIR / relative))
    if image is None:
        pytest.skip(f"{relative} not readable in {MEDIA_DIR}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def dlib_ground_truth(name: str = "testing.xml") -> list[tuple[str, list[Box]]]:
    root = ET.parse(MEDIA_DIR / "images" / "dlib_faces" / name).getroot()
    return [
        (
            f"images/dlib_faces/{image.get('file')}",
            [
                Box(
                    max(0, int(b.get("left"))),
                    max(0, int(b.get("top"))),
                    int(b.get("width")),
                    int(b.get("height")),
                )
                for b in image.iter("box")
                if b.get("ignore") != "1"
            ],
        )
        for image in root.iter("image")
    ]
