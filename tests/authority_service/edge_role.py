"""Plays the edge agent's part for the authority tests, with the edge's own code.

:func:`deidentify_clip` does what ``uunet-edge run --source CLIP --evidence OUT`` does to each
frame, minus detection and tracking (the boxes are given): the edge's
:class:`edge_agent.deid.Deidentifier` replaces the boxes (crop per model size, ``Ue`` through
ONNX Runtime with one noise plane per box from the edge's :class:`~edge_agent.noise.NoiseBank`,
the card's feathered paste), the frame is sealed with its ROI message
(``shared.frame_seal.seal_frame``, as the edge's processor seals it) and written to a lossless
evidence file (``shared.video_io.LosslessWriter``). The original frames stay with the caller.

To run the round trip against the real edge agent instead, replace the call to
:func:`deidentify_clip` with the CLI (keeping the camera id and key)::

    subprocess.run(["uunet-edge", "run", "--source", str(source), "--evidence", str(out),
                    "--model", str(model_dir), "--max-frames", str(n), "--no-realtime"],
                   env={**os.environ, <the edge's camera-key variable>: key.decode()},
                   check=True)

The tests read the boxes back from the evidence file's messages and align frames by the
message's frame index, so they do not depend on which of the two made the file.

``sealed_for`` plays the edge's face sealing: it gets each original frame and its boxes and
returns the sealed-faces payload (:mod:`shared.sealed_faces`) that the message then carries.
:func:`deidentify_lossy_clip` writes the same public frames as the edge's lossy output (H.264,
each message in SEI; :class:`edge_agent.outputs.lossy.LossyPublisher`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from edge_agent.deid import Deidentifier
from edge_agent.noise import NoiseBank
from edge_agent.outputs.base import StreamFormat
from edge_agent.outputs.lossy import LossyPublisher
from edge_agent.pipeline import SealedFrame
from shared.frame_seal import MessageFormat, seal_frame
from shared.geometry import Box
from shared.model_dir import load_encoder
from shared.video_io import LosslessCodec, LosslessWriter, read_frames

BoxesFor = Callable[[int, np.ndarray], Sequence[Box]]
#: (frame index, original frame, boxes) -> the frame's sealed-faces payload, or None.
SealedFor = Callable[[int, np.ndarray, Sequence[Box]], bytes | None]


def public_frames(
    frames: Iterable[np.ndarray],
    boxes_for: BoxesFor,
    model_dir: Path,
    *,
    camera_id: str,
    key: bytes,
    message_format: MessageFormat = "v1",
    seed: int = 0,
    sealed_for: SealedFor | None = None,
) -> Iterator[SealedFrame]:
    """The de-identified, sealed public frame of each of ``frames``.

    Box ``k`` of a frame gets the noise plane of track ``k`` (``seed`` seeds the noise secret).
    """
    encoder, card = load_encoder(model_dir, providers="cpu", threads=1)
    deidentifier = Deidentifier(encoder, card, NoiseBank(b"edge-role-%d" % seed, card.input_size))
    for index, frame in enumerate(frames):
        boxes = list(boxes_for(index, frame))
        public = frame.copy()
        deidentifier.apply(public, boxes, list(range(len(boxes))))
        _, message = seal_frame(
            public,
            boxes,
            message_format=message_format,
            camera_id=camera_id,
            model_id=card.model_id,
            frame_index=index,
            key=key,
            sealed=sealed_for(index, frame, boxes) if sealed_for else None,
            inplace=True,
        )
        yield SealedFrame(index, public, tuple(boxes), (), message)


def deidentify_clip(
    frames: Iterable[np.ndarray],
    boxes_for: BoxesFor,
    model_dir: Path,
    out: Path,
    *,
    camera_id: str,
    key: bytes,
    fps: Fraction | float = 15,
    codec: LosslessCodec = "ffv1",
    message_format: MessageFormat = "v1",
    seed: int = 0,
    sealed_for: SealedFor | None = None,
) -> Path:
    """Write the de-identified, sealed evidence clip of ``frames`` to ``out``; return ``out``."""
    writer: LosslessWriter | None = None
    try:
        for sealed in public_frames(
            frames,
            boxes_for,
            model_dir,
            camera_id=camera_id,
            key=key,
            message_format=message_format,
            seed=seed,
            sealed_for=sealed_for,
        ):
            if writer is None:
                height, width = sealed.rgb.shape[:2]
                writer = LosslessWriter(out, width, height, fps, codec=codec)
            writer.write(sealed.rgb)
    finally:
        if writer is not None:
            writer.close()
    return out


def deidentify_lossy_clip(
    frames: Sequence[np.ndarray],
    boxes_for: BoxesFor,
    model_dir: Path,
    out: Path,
    *,
    camera_id: str,
    key: bytes,
    fps: int = 15,
    crf: int = 23,
    sealed_for: SealedFor | None = None,
) -> Path:
    """Write the lossy public stream of ``frames`` (H.264 yuv420p, messages in SEI) to ``out``
    (``.mp4``, ``.ts`` or ``.mkv``) as the edge's lossy output does; return ``out``."""
    height, width = frames[0].shape[:2]
    sink = LossyPublisher(str(out), crf=crf)
    sink.open(StreamFormat(width, height, Fraction(fps)))
    try:
        for sealed in public_frames(
            frames, boxes_for, model_dir, camera_id=camera_id, key=key, sealed_for=sealed_for
        ):
            sink.write(sealed)
    finally:
        sink.close()
    return out


def synthetic_frames(count: int, width: int = 320, height: int = 240, seed: int = 1) -> list:
    """Smooth, textured RGB frames (gradients and moving blobs) that change every frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width, yy / height, (xx + yy) / (width + height)], axis=-1)
    frames = []
    for i in range(count):
        canvas = base.copy()
        for _ in range(6):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            radius = rng.uniform(10, 40)
            blob = np.exp(-((xx - cx - 2 * i) ** 2 + (yy - cy) ** 2) / (2 * radius**2))
            canvas += blob[..., None] * rng.uniform(-0.5, 0.5, 3).astype(np.float32)
        canvas += rng.normal(0, 0.01, canvas.shape).astype(np.float32)
        frames.append(np.clip(canvas * 255, 0, 255).astype(np.uint8))
    return frames


def forged_copy(
    clip: Path, frames: Iterable[int], out: Path, at: tuple[int, int] = (30, 30)
) -> Path:
    """``clip`` (FFV1 evidence) with one pixel at ``at`` changed in each of ``frames`` after
    sealing (inside the face box of the queue tests' clips): a forgery the message's tag
    catches at the first of them. Written as FFV1 at 15 frames/s to ``out``."""
    decoded = [f.rgb for f in read_frames(clip)]
    for index in frames:
        decoded[index][at] ^= 0x80
    height, width = decoded[0].shape[:2]
    with LosslessWriter(out, width, height, 15) as writer:
        for frame in decoded:
            writer.write(frame)
    return out


def assert_same_frames(a: Path, b: Path, frames: int) -> None:
    """``a`` and ``b`` decode to the same ``frames`` frames: index, time and every pixel."""
    count = 0
    for x, y in zip(read_frames(a), read_frames(b), strict=True):
        assert (x.index, x.time) == (y.index, y.time)
        np.testing.assert_array_equal(x.rgb, y.rgb)
        count += 1
    assert count == frames
