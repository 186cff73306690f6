"""authority_service.reconstruction: reverse frames and clips exactly where the toy pair allows,
refuse every bad message with the frame named, pass frames without a message through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from authority_service.decoders import DecoderRegistry
from authority_service.errors import (
    CorruptVideoError,
    ForgedMessageError,
    MalformedMessageError,
    ModelUnavailableError,
    NoMessageError,
    NotAVideoError,
    UnauthenticatedMessageError,
    UnknownModelError,
)
from authority_service.reconstruction import (
    LsbMessageSource,
    ReconstructionCancelledError,
    Reconstructor,
    paste_reconstruction,
)
from shared import stego
from shared.frame_seal import seal_frame
from shared.geometry import Box, crop
from shared.video_io import LosslessWriter, VideoFrame, probe, read_frames
from tests.authority_service.conftest import CAMERA_ID, CAMERA_KEY, SMALL_BOX, SYNTHETIC_BOXES
from tests.authority_service.edge_role import deidentify_clip, synthetic_frames
from tests.toy_models import TOY_MODEL_ID, write_toy_model_dir


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def reconstructor(models_dir) -> Reconstructor:
    registry = DecoderRegistry(models_dir, None, providers="cpu", threads=1)
    return Reconstructor(registry, LsbMessageSource({CAMERA_ID: CAMERA_KEY}), max_batch=8)


def _write(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    height, width = frames[0].shape[:2]
    with LosslessWriter(path, width, height, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def _sealed_frame(model_dir: Path, boxes, tmp: Path, **seal) -> tuple[np.ndarray, np.ndarray]:
    """(original, public) of one synthetic frame de-identified by the toy Ue."""
    original = synthetic_frames(1)[0]
    out = tmp / "one.mkv"
    deidentify_clip([original], lambda i, f: boxes, model_dir, out, **seal)
    return original, next(iter(read_frames(out))).rgb


def test_reconstruct_image_model_size_box_is_exact_and_others_close(
    reconstructor, models_dir, tmp_path
):
    boxes = [*SYNTHETIC_BOXES, SMALL_BOX]
    original, public = _sealed_frame(
        models_dir / TOY_MODEL_ID, boxes, tmp_path, camera_id=CAMERA_ID, key=CAMERA_KEY
    )
    result = reconstructor.reconstruct_image(public)
    assert result.verified and result.model_id == TOY_MODEL_ID
    assert result.message.boxes == tuple(boxes)
    # A box of the model's size (64x64) involves no resampling: the toy pair is exact there.
    np.testing.assert_array_equal(crop(result.rgb, boxes[0]), crop(original, boxes[0]))
    for box in boxes:
        assert psnr(crop(public, box), crop(original, box)) < 15  # hidden at the edge
        assert psnr(crop(result.rgb, box), crop(original, box)) > 35  # back at the authority
    outside = np.ones(original.shape[:2], bool)
    for box in boxes:
        outside[box.y : box.bottom, box.x : box.right] = False
    np.testing.assert_array_equal(result.rgb[outside], public[outside])


def test_reconstruct_image_without_message_raises_no_message(reconstructor):
    frame = synthetic_frames(1)[0]
    with pytest.raises(NoMessageError):
        reconstructor.reconstruct_image(frame)


def test_reconstruct_image_forged_tag_raises_forged_message(reconstructor, models_dir, tmp_path):
    _, public = _sealed_frame(
        models_dir / TOY_MODEL_ID,
        [SYNTHETIC_BOXES[0]],
        tmp_path,
        camera_id=CAMERA_ID,
        key=b"x" * 32,
    )
    with pytest.raises(ForgedMessageError) as info:
        reconstructor.reconstruct_image(public)
    assert info.value.extra["field"] == "tag"


def test_reconstruct_image_edited_picture_raises_forged_message(
    reconstructor, models_dir, tmp_path
):
    _, public = _sealed_frame(
        models_dir / TOY_MODEL_ID,
        [SYNTHETIC_BOXES[0]],
        tmp_path,
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )
    public[200, 200] ^= 0x10  # one pixel above the LSB plane
    with pytest.raises(ForgedMessageError):
        reconstructor.reconstruct_image(public)


def test_reconstruct_image_unknown_model_raises_before_any_inference(reconstructor, tmp_path):
    other = write_toy_model_dir(tmp_path / "other", model_id="feedfacefeedface")
    _, public = _sealed_frame(
        other, [SYNTHETIC_BOXES[0]], tmp_path, camera_id=CAMERA_ID, key=CAMERA_KEY
    )
    with pytest.raises(UnknownModelError, match="feedfacefeedface"):
        reconstructor.reconstruct_image(public)
    clip = tmp_path / "unknown.mkv"
    _write(clip, [synthetic_frames(1)[0], public])  # frame 0 without message, frame 1 with
    with pytest.raises(UnknownModelError) as info:
        reconstructor.reconstruct_clip(clip, tmp_path / "o.mkv")
    assert info.value.extra == {"model_id": "feedfacefeedface", "frame": 1}


def test_reconstruct_image_malformed_message_names_the_field(reconstructor):
    frame = stego.embed(synthetic_frames(1)[0], "2,10,10,5,5,")  # count says 2, one box follows
    with pytest.raises(MalformedMessageError) as info:
        reconstructor.reconstruct_image(frame)
    assert info.value.extra["field"] == "count"


def test_lsb_noise_that_does_not_announce_a_message_is_no_message(reconstructor):
    frame = stego.embed(synthetic_frames(1)[0], "x")  # a valid "1:x" LSB prefix, not a message
    assert reconstructor.messages.open(VideoFrame(0, frame, None)) is None


def test_unknown_camera_is_unverified_unless_authentication_required(models_dir, tmp_path):
    _, public = _sealed_frame(
        models_dir / TOY_MODEL_ID,
        [SYNTHETIC_BOXES[0]],
        tmp_path,
        camera_id="cam-other",
        key=b"y" * 32,
    )
    registry = DecoderRegistry(models_dir, None, providers="cpu", threads=1)
    lenient = Reconstructor(registry, LsbMessageSource({CAMERA_ID: CAMERA_KEY}))
    assert lenient.reconstruct_image(public).verified is False
    strict = Reconstructor(
        registry, LsbMessageSource({CAMERA_ID: CAMERA_KEY}, require_authentication=True)
    )
    with pytest.raises(UnauthenticatedMessageError, match="cam-other"):
        strict.reconstruct_image(public)


def test_paper_message_uses_default_decoder_and_refuses_without_one(models_dir, tmp_path):
    original = synthetic_frames(1)[0]
    box = SYNTHETIC_BOXES[0]
    public = original.copy()
    public[box.y : box.bottom, box.x : box.right] = 255 - crop(original, box)  # toy Ue at 64 px
    public, _ = seal_frame(public, [box], message_format="paper")
    with_default = Reconstructor(
        DecoderRegistry(None, models_dir / TOY_MODEL_ID, providers="cpu"), LsbMessageSource({})
    )
    result = with_default.reconstruct_image(public)
    assert result.model_id == TOY_MODEL_ID and not result.verified
    np.testing.assert_array_equal(crop(result.rgb, box), crop(original, box))
    without = Reconstructor(
        DecoderRegistry(models_dir, None, providers="cpu"), LsbMessageSource({})
    )
    with pytest.raises(ModelUnavailableError):
        without.reconstruct_image(public)


def test_paste_reconstruction_checks_counts():
    frame = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="2 decoder outputs for 1 boxes"):
        paste_reconstruction(frame, np.zeros((2, 3, 8, 8), np.float32), [Box(0, 0, 8, 8)])


def test_reconstruct_clip_counts_frames_and_passes_unmarked_frames_through(
    reconstructor, models_dir, evidence_clip, tmp_path
):
    # Append 2 frames without any message after the evidence frames.
    frames = [f.rgb for f in read_frames(evidence_clip)]
    plain = synthetic_frames(2, seed=9)
    mixed = _write(tmp_path / "mixed.mkv", frames + plain)
    progress: list[int] = []
    report = reconstructor.reconstruct_clip(
        mixed, tmp_path / "out.mkv", progress=lambda done, total: progress.append(done)
    )
    assert report.frames == 14 and report.frames_without_message == 2
    assert report.frames_with_message == 12 and report.frames_reconstructed == 11  # frame 5: none
    assert report.faces == 11 * 3 + 5  # odd frames (1,3,7,9,11) carry the small box too
    assert report.verified_frames == 12 and report.model_ids == [TOY_MODEL_ID]
    assert progress[-1] == 14 and progress == sorted(progress)
    out = [f.rgb for f in read_frames(tmp_path / "out.mkv")]
    assert len(out) == 14
    for produced, plain_frame in zip(out[12:], plain, strict=True):
        np.testing.assert_array_equal(produced, plain_frame)
    np.testing.assert_array_equal(out[5], frames[5])  # empty message: unchanged


@pytest.mark.parametrize("codec", ["ffv1", "libx264rgb"])
def test_reconstruct_clip_writes_lossless_result_in_either_codec(
    reconstructor, evidence_clip, tmp_path, codec
):
    suffix = ".mkv" if codec == "ffv1" else ".mp4"
    out = tmp_path / f"out{suffix}"
    report = reconstructor.reconstruct_clip(evidence_clip, out, codec=codec)
    info = probe(out)
    assert info.codec == ("ffv1" if codec == "ffv1" else "h264")
    assert report.result_codec == codec and (info.width, info.height) == (320, 240)
    via_image = reconstructor.reconstruct_image(next(iter(read_frames(evidence_clip))).rgb).rgb
    np.testing.assert_array_equal(next(iter(read_frames(out))).rgb, via_image)


def test_odd_sized_clip_falls_back_to_ffv1_only_when_allowed(reconstructor, models_dir, tmp_path):
    frames = [f[:239, :319] for f in synthetic_frames(2)]
    clip = deidentify_clip(
        frames,
        lambda i, f: [SYNTHETIC_BOXES[0]],
        models_dir / TOY_MODEL_ID,
        tmp_path / "odd.mkv",
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )
    with pytest.raises(ValueError, match="even frame sizes"):
        reconstructor.reconstruct_clip(clip, tmp_path / "o.mp4", codec="libx264rgb")
    report = reconstructor.reconstruct_clip(
        clip, tmp_path / "o.partial", codec="libx264rgb", fallback_to_ffv1=True
    )
    assert report.result_codec == "ffv1" and probe(tmp_path / "o.partial").codec == "ffv1"


def test_reconstruct_clip_forged_frame_fails_whole_clip_and_leaves_no_output(
    reconstructor, evidence_clip, tmp_path
):
    frames = [f.rgb for f in read_frames(evidence_clip)]
    frames[7][100, 100] ^= 0x80  # alter the picture of frame 7 after sealing
    forged = _write(tmp_path / "forged.mkv", frames)
    out = tmp_path / "out.mkv"
    with pytest.raises(ForgedMessageError) as info:
        reconstructor.reconstruct_clip(forged, out)
    assert info.value.extra["frame"] == 7
    assert not out.exists()


def test_reconstruct_clip_truncated_mkv_raises_corrupt_video(
    reconstructor, evidence_clip, tmp_path
):
    data = evidence_clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(CorruptVideoError, match=r"truncated|cannot be decoded"):
        reconstructor.reconstruct_clip(cut, tmp_path / "out.mkv")
    assert not (tmp_path / "out.mkv").exists()


def test_reconstruct_clip_rejects_non_video_and_clip_without_messages(reconstructor, tmp_path):
    text = tmp_path / "notes.mkv"
    text.write_text("not a video at all\n" * 100)
    with pytest.raises(NotAVideoError):
        reconstructor.reconstruct_clip(text, tmp_path / "a.mkv")
    plain = _write(tmp_path / "plain.mkv", synthetic_frames(3))
    with pytest.raises(NoMessageError, match="none of the clip's 3 frames"):
        reconstructor.reconstruct_clip(plain, tmp_path / "b.mkv")
    assert not (tmp_path / "b.mkv").exists()


def test_reconstruct_clip_cancelled_stops_and_removes_output(
    reconstructor, evidence_clip, tmp_path
):
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(ReconstructionCancelledError):
        reconstructor.reconstruct_clip(evidence_clip, tmp_path / "o.mkv", cancelled=cancelled)
    assert not (tmp_path / "o.mkv").exists()
