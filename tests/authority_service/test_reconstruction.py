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
    ClipMessages,
    LsbMessageSource,
    ReconstructionCancelledError,
    Reconstructor,
    SeiMessageSource,
    message_sources,
    paste_reconstruction,
)
from edge_agent.samples.make_sample import SAMPLE
from shared import stego
from shared.frame_seal import seal_frame
from shared.geometry import Box, crop
from shared.sei import UUNET_SEI_UUID
from shared.video_io import LosslessWriter, VideoFrame, probe, read_frames
from tests.authority_service.conftest import CAMERA_ID, CAMERA_KEY, SMALL_BOX, SYNTHETIC_BOXES
from tests.authority_service.edge_role import deidentify_clip, synthetic_frames
from tests.authority_service.edge_run import run_edge_on_sample
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
    assert reconstructor.sources[0].open(VideoFrame(0, frame, None)) is None


def test_unknown_camera_is_refused_by_default_and_unverified_when_allowed(models_dir, tmp_path):
    _, public = _sealed_frame(
        models_dir / TOY_MODEL_ID,
        [SYNTHETIC_BOXES[0]],
        tmp_path,
        camera_id="cam-other",
        key=b"y" * 32,
    )
    registry = DecoderRegistry(models_dir, None, providers="cpu", threads=1)
    lenient = Reconstructor(
        registry, LsbMessageSource({CAMERA_ID: CAMERA_KEY}, require_authentication=False)
    )
    assert lenient.reconstruct_image(public).verified is False
    strict = Reconstructor(registry, LsbMessageSource({CAMERA_ID: CAMERA_KEY}))  # the default
    with pytest.raises(UnauthenticatedMessageError, match="cam-other"):
        strict.reconstruct_image(public)


def test_paper_message_uses_default_decoder_and_refuses_without_one(models_dir, tmp_path):
    original = synthetic_frames(1)[0]
    box = SYNTHETIC_BOXES[0]
    public = original.copy()
    public[box.y : box.bottom, box.x : box.right] = 255 - crop(original, box)  # toy Ue at 64 px
    public, _ = seal_frame(public, [box], message_format="paper")
    unsigned = LsbMessageSource({}, require_authentication=False)  # a paper message is unsigned
    with_default = Reconstructor(
        DecoderRegistry(None, models_dir / TOY_MODEL_ID, providers="cpu"), unsigned
    )
    result = with_default.reconstruct_image(public)
    assert result.model_id == TOY_MODEL_ID and not result.verified
    np.testing.assert_array_equal(crop(result.rgb, box), crop(original, box))
    without = Reconstructor(DecoderRegistry(models_dir, None, providers="cpu"), unsigned)
    with pytest.raises(ModelUnavailableError):
        without.reconstruct_image(public)


def test_paste_reconstruction_checks_counts():
    frame = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="2 model outputs for 1 boxes"):
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


# -- messages from the SEI of a lossy public stream -----------------------------------------

LOSSY_FRAMES = 24
# Measured on these 24 frames of the edge's sample clip (toy model, lossy CRF 23, 96 ROIs of
# 62-173 px): PSNR of r vs x in the ROIs, mean 26.0 dB and worst ROI 24.2 dB from the lossy
# stream, against 26.9 / 24.5 dB from the lossless evidence of the same run (the toy pair is
# exact: what remains is resampling each ROI to 64x64 and back, plus H.264's loss); the public
# ROIs are at 8.1 dB (at most 9.7).
MIN_LOSSY_MEAN_PSNR_DB = 24.0
MIN_LOSSY_ROI_PSNR_DB = 22.0
MAX_PUBLIC_ROI_PSNR_DB = 12.0


@pytest.fixture(scope="module")
def edge_outputs(models_dir, tmp_path_factory):
    """The real edge agent (YuNet, tracker, toy Ue) on the sample clip: a lossy H.264 public
    file with the messages in SEI and the lossless evidence of the same frames."""
    out = tmp_path_factory.mktemp("edge")
    # the edge package of the toy the authority holds (no ud.onnx on the camera)
    package = write_toy_model_dir(out / "ue", decoder=False)
    run = run_edge_on_sample(out, package, LOSSY_FRAMES, seal=False)
    originals = {f.index: f.rgb for f in read_frames(SAMPLE) if f.index < LOSSY_FRAMES}
    return run.lossy, run.evidence, originals


def _roi_psnrs(result: Path, public: Path, originals) -> tuple[list[float], list[float]]:
    """PSNR of each ROI the public clip's messages list: (reconstructed, public) vs original."""
    reconstructed, hidden = [], []
    for pub, rec in zip(read_frames(public), read_frames(result), strict=True):
        opened = ClipMessages(message_sources({}, require_authentication=False)).open(pub)
        original = originals[opened.message.frame_index]
        for box in opened.message.boxes:
            reconstructed.append(psnr(crop(rec.rgb, box), crop(original, box)))
            hidden.append(psnr(crop(pub.rgb, box), crop(original, box)))
    return reconstructed, hidden


@pytest.mark.slow
def test_lossy_stream_is_reversed_from_sei_as_unverified(models_dir, edge_outputs, tmp_path):
    public, evidence, originals = edge_outputs
    registry = DecoderRegistry(models_dir, None, providers="cpu", threads=1)
    reconstructor = Reconstructor(
        registry, message_sources({CAMERA_ID: CAMERA_KEY}, require_authentication=False)
    )
    report = reconstructor.reconstruct_clip(public, tmp_path / "from_sei.mkv")
    assert report.message_source == "sei" and report.frames == LOSSY_FRAMES
    assert report.frames_with_message == LOSSY_FRAMES and report.faces >= 3 * LOSSY_FRAMES
    assert report.verified_frames == 0 and report.unverified_frames == LOSSY_FRAMES
    assert report.model_ids == [TOY_MODEL_ID] and report.camera_ids == [CAMERA_ID]
    reconstructed, hidden = _roi_psnrs(tmp_path / "from_sei.mkv", public, originals)
    assert np.mean(reconstructed) > MIN_LOSSY_MEAN_PSNR_DB, np.mean(reconstructed)
    assert min(reconstructed) > MIN_LOSSY_ROI_PSNR_DB, min(reconstructed)
    assert max(hidden) < MAX_PUBLIC_ROI_PSNR_DB, max(hidden)
    # The lossless evidence of the same run is read from its pixels and verified.
    lossless = reconstructor.reconstruct_clip(evidence, tmp_path / "from_lsb.mkv")
    assert lossless.message_source == "lsb" and lossless.verified_frames == LOSSY_FRAMES
    exact, _ = _roi_psnrs(tmp_path / "from_lsb.mkv", evidence, originals)
    assert np.mean(exact) > np.mean(reconstructed)


@pytest.mark.slow
def test_lossy_stream_is_refused_when_authentication_is_required(
    models_dir, edge_outputs, tmp_path
):
    public, _, _ = edge_outputs
    registry = DecoderRegistry(models_dir, None, providers="cpu", threads=1)
    strict = Reconstructor(registry, message_sources({CAMERA_ID: CAMERA_KEY}))  # the default
    with pytest.raises(UnauthenticatedMessageError, match="lossless evidence") as info:
        strict.reconstruct_clip(public, tmp_path / "refused.mkv")
    assert info.value.extra["frame"] == 0 and not (tmp_path / "refused.mkv").exists()


def _sei(text: str | bytes) -> bytes:
    return UUNET_SEI_UUID + (text.encode() if isinstance(text, str) else text)


def test_sei_source_reads_one_message_and_refuses_malformed_ones():
    frame = np.zeros((48, 64, 3), np.uint8)
    source = SeiMessageSource(require_authentication=False)
    assert source.open(VideoFrame(0, frame, None)) is None
    opened = source.open(VideoFrame(3, frame, None, (_sei("1,2,3,10,10,"),)))
    assert opened.message.boxes == (Box(2, 3, 10, 10),) and not opened.verified
    for payloads, field in [
        ((_sei("1,2,3,10,10,"), _sei("0,")), "sei"),
        ((_sei(b"\xff\xfe"),), "sei"),
        ((_sei("1,60,40,10,10,"),), "box 1"),  # outside the 64x48 frame
    ]:
        with pytest.raises(MalformedMessageError) as info:
            source.open(VideoFrame(7, frame, None, payloads))
        assert info.value.extra["frame"] == 7
        assert info.value.extra["field"].startswith(field), info.value.extra


def test_clip_messages_prefers_lsb_and_keeps_the_first_carrier():
    plain = synthetic_frames(1)[0]
    sealed = seal_frame(plain.copy(), [SYNTHETIC_BOXES[0]], message_format="paper")[0]
    sei = (_sei("0,"),)
    both = ClipMessages(message_sources({}, require_authentication=False))
    assert both.open(VideoFrame(0, plain, None)) is None and both.chosen is None
    assert both.open(VideoFrame(1, sealed, None, sei)).message.boxes == (SYNTHETIC_BOXES[0],)
    assert both.chosen.name == "lsb"
    assert both.open(VideoFrame(2, plain, None, sei)) is None  # SEI ignored in an LSB clip
    lossy = ClipMessages(message_sources({}, require_authentication=False))
    assert lossy.open(VideoFrame(0, plain, None, sei)).message.boxes == ()
    assert lossy.chosen.name == "sei"
    assert lossy.open(VideoFrame(1, sealed, None)) is None  # LSB ignored in an SEI clip


def test_feathered_multi_size_model_round_trips_through_edge_and_authority(tmp_path):
    """Edge Deidentifier -> public frame -> authority reverse_faces, with a card that names a
    feathered composition at two sizes: each ROI goes through its own size, the inside of every
    ROI comes back exactly (the toy is exactly reversible), the band is blended into the scene."""
    from authority_service.decoders import Decoder
    from authority_service.reconstruction import reverse_faces
    from edge_agent.deid import Deidentifier
    from edge_agent.noise import NoiseBank
    from shared.compositing import Composition, feather_mask
    from shared.model_dir import load_decoder, load_encoder

    composition = {"resample": "smooth", "feather": 0.1, "sizes": [16, 32]}
    model_dir = write_toy_model_dir(tmp_path / "m", size=16, composition=composition)
    encoder, card = load_encoder(model_dir, providers="cpu")
    assert card.composition == Composition("smooth", 0.1, (16, 32))
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)
    boxes = [Box(2, 2, 16, 16), Box(40, 30, 32, 32)]  # one ROI per model size, at that size
    public = original.copy()
    Deidentifier(encoder, card, NoiseBank(b"k" * 32, 16)).apply(public, boxes, [1, 2])
    decoder_model, _ = load_decoder(model_dir, providers="cpu")
    restored = public.copy()
    reverse_faces(Decoder(decoder_model, card, model_dir), [restored], [boxes])
    for box in boxes:
        band = round(0.1 * box.w)
        inside = (slice(box.y + band, box.bottom - band), slice(box.x + band, box.right - band))
        assert np.array_equal(public[inside], 255 - original[inside])  # a = 1 - x inside
        assert np.abs(restored[inside].astype(int) - original[inside]).max() <= 1
        # The outermost row is mostly scene: off by at most m0 x |a - x| (m0 its paste weight).
        m0 = float(feather_mask(box.w, box.h, 0.1)[0, box.w // 2, 0])
        edge_row = public[box.y, box.x : box.right].astype(int)
        scene = original[box.y, box.x : box.right].astype(int)
        assert m0 < 0.25
        assert np.all(np.abs(edge_row - scene) <= np.ceil(m0 * np.abs(255 - 2 * scene)) + 1)
    outside = np.ones(original.shape[:2], bool)
    for box in boxes:
        outside[box.y : box.bottom, box.x : box.right] = False
    assert np.array_equal(restored[outside], original[outside])
