"""Generate ``street_faces.mp4``: the redistributable sample clip of the README's main job.

Everything is drawn here with OpenCV primitives (no photograph, no third-party content; the
clip is CC0 like this script): a street backdrop and four cartoon people whose faces the
default YuNet detector finds, walking, bobbing, entering the frame and one of them small.
640x360, 15 fps, 6 s, H.264 (yuv420p, CRF 20), about 0.2 MB.

    python edge_agent/samples/make_sample.py [--out edge_agent/samples/street_faces.mp4]

:func:`face_boxes` gives the drawn faces' boxes for a frame index (used by the tests).
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

WIDTH, HEIGHT, FPS, FRAMES = 640, 360, 15, 90
SAMPLE = Path(__file__).with_name("street_faces.mp4")

# (skin, hair) RGB; face size (px, top of hair to chin), start and end centre x, centre y.
PEOPLE = [
    ((230, 190, 160), (60, 40, 20), 110, 90, 250, 175),
    ((180, 130, 100), (20, 20, 20), 84, 360, 340, 160),
    ((240, 205, 180), (200, 170, 90), 130, 600, 500, 195),
    ((200, 150, 120), (110, 60, 30), 54, 380, 420, 70),
]


def _scale(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, c * factor)) for c in colour)  # type: ignore[return-value]


def _backdrop() -> np.ndarray:
    img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    sky = np.linspace(200, 150, 250)[:, None]
    img[:250, :, 0] = (sky * 0.45).astype(np.uint8)
    img[:250, :, 1] = (sky * 0.7).astype(np.uint8)
    img[:250, :, 2] = sky.astype(np.uint8)
    for x0, w, h, colour in [(0, 70, 150, (150, 110, 90)), (420, 90, 120, (110, 100, 150))]:
        cv2.rectangle(img, (x0, 250 - h), (x0 + w, 250), colour, -1)
        for wy in range(250 - h + 12, 240, 28):
            for wx in range(x0 + 10, x0 + w - 14, 22):
                cv2.rectangle(img, (wx, wy), (wx + 10, wy + 14), (235, 225, 150), -1)
    img[250:] = (70, 90, 60)
    cv2.line(img, (0, 300), (WIDTH, 300), (200, 200, 90), 3)
    return img


def _person(img: np.ndarray, cx: int, cy: int, s: int, skin: tuple, hair: tuple) -> None:
    w, h = int(s * 0.38), int(s * 0.5)
    cv2.ellipse(
        img, (cx, cy + int(s * 0.55)), (int(w * 1.3), int(s * 0.25)), 0, 180, 360, (60, 70, 120), -1
    )
    cv2.rectangle(
        img,
        (cx - int(w * 0.35), cy + int(h * 0.7)),
        (cx + int(w * 0.35), cy + int(h * 1.1)),
        skin,
        -1,
    )
    cv2.ellipse(img, (cx, cy - int(s * 0.12)), (int(w * 1.12), int(h * 0.9)), 0, 180, 360, hair, -1)
    cv2.ellipse(img, (cx, cy), (w, h), 0, 0, 360, skin, -1)
    ex, ey = int(w * 0.42), cy - int(h * 0.12)
    for sign in (-1, 1):
        ex_c = cx + sign * ex
        cv2.ellipse(
            img,
            (ex_c, ey - int(h * 0.2)),
            (int(w * 0.28), int(h * 0.05)),
            0,
            180,
            360,
            _scale(hair, 0.5),
            max(1, int(s * 0.02)),
        )
        cv2.ellipse(img, (ex_c, ey), (int(w * 0.2), int(h * 0.08)), 0, 0, 360, (245, 245, 245), -1)
        cv2.circle(img, (ex_c, ey), max(1, int(h * 0.07)), (50, 35, 25), -1)
    nose = np.array(
        [
            [cx, ey + int(h * 0.05)],
            [cx - int(w * 0.14), cy + int(h * 0.3)],
            [cx + int(w * 0.14), cy + int(h * 0.3)],
        ]
    )
    cv2.fillPoly(img, [nose], _scale(skin, 0.85))
    cv2.ellipse(
        img, (cx, cy + int(h * 0.55)), (int(w * 0.35), int(h * 0.1)), 0, 0, 180, (150, 60, 60), -1
    )


def _positions(index: int) -> list[tuple[int, int, int, tuple, tuple]]:
    t = index / max(1, FRAMES - 1)
    out = []
    for k, (skin, hair, size, x0, x1, y) in enumerate(PEOPLE):
        cx = round(x0 + (x1 - x0) * t)
        cy = round(y + 4 * np.sin(index * 0.4 + k))
        out.append((cx, cy, size, skin, hair))
    return out


def face_boxes(index: int) -> list[tuple[int, int, int, int]]:
    """The drawn faces (skin ellipse) of frame ``index`` as ``(x, y, w, h)``, clipped."""
    boxes = []
    for cx, cy, s, _, _ in _positions(index):
        w, h = int(s * 0.38), int(s * 0.5)
        x0, y0, x1, y1 = max(0, cx - w), max(0, cy - h), min(WIDTH, cx + w), min(HEIGHT, cy + h)
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1 - x0, y1 - y0))
    return boxes


def render(index: int, backdrop: np.ndarray | None = None) -> np.ndarray:
    """Frame ``index`` of the clip as ``H x W x 3`` RGB."""
    img = (_backdrop() if backdrop is None else backdrop).copy()
    for cx, cy, s, skin, hair in _positions(index):
        _person(img, cx, cy, s, skin, hair)
    return img


def write_sample(path: Path = SAMPLE) -> Path:
    """Encode the clip to ``path`` (H.264 yuv420p, CRF 20)."""
    backdrop = _backdrop()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "20", "preset": "slow"}
        stream.time_base = Fraction(1, FPS)
        for index in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(render(index, backdrop), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="write the sample clip")
    parser.add_argument("--out", type=Path, default=SAMPLE)
    args = parser.parse_args()
    print(write_sample(args.out), f"{args.out.stat().st_size / 1e6:.2f} MB")  # noqa: T201


if __name__ == "__main__":
    main()
