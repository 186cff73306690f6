"""authority_service.sealed: faces sealed at the edge come back exactly with the authority's
private keys (after the Ud pastes), fall back to Ud with a reason otherwise, and any damaged,
replayed or swapped payload fails with a typed error; a sealed payload verifies an SEI message.

Real crypto (X25519 key files, HPKE, ChaCha20-Poly1305, HMAC), real codecs (FFV1 evidence,
H.264 with SEI), the toy Ue/Ud pair.
"""

from __future__ import annotations

import numpy as np
import pytest

from authority_service.decoders import DecoderRegistry
from authority_service.errors import (
    ForgedMessageError,
    SealedFacesError,
    SealingKeyNotHeldError,
    UnauthenticatedMessageError,
)
from authority_service.reconstruction import Reconstructor, SeiMessageSource, message_sources
from authority_service.sealed import MAX_FACE_ENTRIES, FaceMethods, FrameFaces, SealedFaceOpener
from shared.geometry import Box, crop
from shared.roi_message import format_v1
from shared.sealed_faces import (
    EncodedFace,
    SealContext,
    decode_face,
    encode_face,
    seal_faces,
)
from shared.sei import UUNET_SEI_UUID
from shared.video_io import VideoFrame, read_frames
from tests.authority_service.conftest import CAMERA_ID, CAMERA_KEY
from tests.authority_service.edge_role import (
    deidentify_lossy_clip,
    public_frames,
    synthetic_frames,
)
from tests.authority_service.sealing import (
    BOX_A,
    BOX_B,
    BOX_C,
    LOSSLESS_FRAMES,
    LOSSLESS_SIZE,
    NO_PAYLOAD_FRAME,
    OLD_KEY_FRAME,
    SEALED_BOXES,
    flipped,
    key_pair,
    lossless_sealed_clip,
    payload,
    remac,
    reseal,
    sealer,
    swapped,
)
from tests.toy_models import TOY_MODEL_ID

LOSSY_FRAMES = 4
# JPEG q95 (4:4:4) of these ROIs, whose synthetic frames carry per-pixel noise (sigma 2.5
# levels): 40.2-40.4 dB against the original ROI over 8 frames (q90: 39.9-40.1 dB).
MIN_JPEG_ROI_PSNR_DB = 40.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """(new, old): the authority's current key and the one it rotated out of the cameras."""
    return key_pair(tmp_path_factory.mktemp("new")), key_pair(tmp_path_factory.mktemp("old"))


@pytest.fixture(scope="module")
def registry(models_dir) -> DecoderRegistry:
    return DecoderRegistry(models_dir, None, providers="cpu", threads=1)


def reconstructor(registry, private_keys=(), *, on_key_not_held="ud", strict=True):
    opener = SealedFaceOpener(
        private_keys, {CAMERA_ID: CAMERA_KEY}, on_key_not_held=on_key_not_held
    )
    sources = message_sources({CAMERA_ID: CAMERA_KEY}, require_authentication=strict, sealed=opener)
    return Reconstructor(registry, sources, max_batch=8, sealed=opener)


@pytest.fixture(scope="module")
def lossless(models_dir, keys, tmp_path_factory):
    new, old = keys
    out = tmp_path_factory.mktemp("sealed") / "evidence.mkv"
    return lossless_sealed_clip(models_dir / TOY_MODEL_ID, out, new.public, old.public)


# -- lossless evidence ----------------------------------------------------------------------


def test_lossless_clip_gives_sealed_faces_back_bit_exact_after_the_ud_pastes(
    registry, keys, lossless, tmp_path
):
    clip, originals = lossless
    new, old = keys
    report = reconstructor(registry, [new, old]).reconstruct_clip(clip, tmp_path / "o.mkv")
    assert report.verified_frames == LOSSLESS_FRAMES
    for frame in read_frames(tmp_path / "o.mkv"):
        original = originals[frame.index]
        if frame.index == NO_PAYLOAD_FRAME:
            assert psnr(crop(frame.rgb, BOX_B), crop(original, BOX_B)) < 60  # Ud: approximate
            continue
        # Every pixel of both sealed ROIs, B's corner under C's feathered Ud paste included.
        for box in (BOX_A, BOX_B):
            np.testing.assert_array_equal(crop(frame.rgb, box), crop(original, box))
        assert psnr(crop(frame.rgb, BOX_C), crop(original, BOX_C)) < 60  # C did not fit: Ud
    methods = report.faces_by_method
    assert (methods.sealed, methods.ud) == (6, 6)
    assert methods.ud_reasons == {"not_in_payload": 3, "no_payload": 3}
    # Rotation: frame 3 was sealed to the older key, held beside the current one.
    assert methods.key_ids == [new.key_id, old.key_id] and methods.missing_key_ids == []
    assert methods.faces[:3] == [
        {"frame": 0, "box": 0, "method": "sealed", "codec": "png"},
        {"frame": 0, "box": 1, "method": "sealed", "codec": "png"},
        {"frame": 0, "box": 2, "method": "ud", "reason": "not_in_payload"},
    ]
    assert {"frame": 2, "box": 1, "method": "ud", "reason": "no_payload"} in methods.faces


def test_without_the_private_key_faces_go_through_ud_reported_key_not_held(
    registry, keys, lossless, tmp_path
):
    clip, originals = lossless
    new, old = keys
    report = reconstructor(registry).reconstruct_clip(clip, tmp_path / "o.mkv")
    methods = report.faces_by_method
    assert (methods.sealed, methods.ud) == (0, 12)
    assert methods.ud_reasons == {"key_not_held": 9, "no_payload": 3}
    assert methods.key_ids == [] and methods.missing_key_ids == [new.key_id, old.key_id]
    first = next(iter(read_frames(tmp_path / "o.mkv")))
    assert psnr(crop(first.rgb, BOX_B), crop(originals[0], BOX_B)) < 60
    assert "key_not_held 9" in methods.detail() and new.key_id in methods.detail()
    # Only the current key: the frame sealed to the rotated-out one falls back alone.
    partial = reconstructor(registry, [new]).reconstruct_clip(clip, tmp_path / "p.mkv")
    assert partial.faces_by_method.ud_reasons == {
        "not_in_payload": 2,
        "no_payload": 3,
        "key_not_held": 3,
    }
    assert partial.faces_by_method.missing_key_ids == [old.key_id]


def test_on_key_not_held_error_fails_the_clip_naming_the_key(registry, keys, lossless, tmp_path):
    clip, _ = lossless
    new, old = keys
    out = tmp_path / "o.mkv"
    with pytest.raises(SealingKeyNotHeldError) as info:
        reconstructor(registry, [new], on_key_not_held="error").reconstruct_clip(clip, out)
    assert info.value.code == "sealing_key_not_held"
    assert info.value.extra["frame"] == OLD_KEY_FRAME
    assert info.value.extra["key_ids"] == [old.key_id] and new.key_id in info.value.detail
    assert not out.exists()


# -- damaged, replayed, swapped payloads (one frame) ----------------------------------------

BOXES = SEALED_BOXES


@pytest.fixture(scope="module")
def frame(models_dir):
    """(original, public) of one frame with A and B replaced by the toy Ue."""
    original = synthetic_frames(1, *LOSSLESS_SIZE)[0]
    sealed = next(
        public_frames(
            [original],
            lambda i, f: BOXES,
            models_dir / TOY_MODEL_ID,
            camera_id=CAMERA_ID,
            key=CAMERA_KEY,
        )
    )
    return original, sealed.rgb


def test_a_sealed_frame_opens_with_a_key_it_was_sealed_to_among_others(registry, keys, frame):
    original, public = frame
    new, old = keys
    both = payload(original, BOXES, 5, [new.public, old.public])
    result = reconstructor(registry, [old]).reconstruct_image(reseal(public, both))
    for box in BOXES:
        np.testing.assert_array_equal(crop(result.rgb, box), crop(original, box))
    assert result.verified and result.faces_by_method.key_ids == [old.key_id]
    assert (result.faces_by_method.sealed, result.faces_by_method.ud) == (2, 0)


@pytest.mark.parametrize(
    ("tamper", "reason", "field"),
    [
        (lambda p, make: p[:-3], "malformed", "mac"),  # truncated
        (lambda p, make: b"USF1" + b"\x00" * 40, "malformed", "recipients"),
        (lambda p, make: b"not a payload", "malformed", "magic"),
        (lambda p, make: p + b"\x00", "malformed", "payload"),  # trailing bytes
        (lambda p, make: flipped(p), "forged", "mac"),
        (lambda p, make: remac(flipped(p), 5), "forged", "face 2"),
        (lambda p, make: swapped(p), "forged", "mac"),
        (lambda p, make: remac(swapped(p), 5), "forged", "face 1"),
        # Frame 3's payload copied into frame 5's message (re-tagged with the camera key),
        # as it was, and with its HMAC recomputed for frame 5 too.
        (lambda p, make: make(3), "forged", "mac"),
        (lambda p, make: remac(make(3), 5), "forged", "key"),
        # Another camera's payload (its own HMAC valid for its key, not this camera's).
        (lambda p, make: make(5, camera_key=b"another-camera-key-0123456789ab"), "forged", "mac"),
    ],
    ids=[
        "truncated",
        "bad-recipients",
        "not-a-payload",
        "trailing-bytes",
        "tampered",
        "tampered-remacced",
        "swapped",
        "swapped-remacced",
        "replayed",
        "replayed-remacced",
        "other-camera",
    ],
)
def test_a_damaged_or_replayed_payload_fails_with_a_typed_error(
    registry, keys, frame, tamper, reason, field
):
    original, public = frame
    new, _ = keys

    def make(index, **kwargs):
        return payload(original, BOXES, index, [new.public], **kwargs)

    tampered = tamper(make(5), make)
    with pytest.raises(SealedFacesError) as info:
        reconstructor(registry, [new]).reconstruct_image(reseal(public, tampered))
    assert info.value.code == "sealed_faces_invalid"
    assert (info.value.extra["reason"], info.value.extra["field"]) == (reason, field)
    assert info.value.extra["frame"] == 0


def test_a_box_edited_in_the_message_or_a_face_of_another_size_fails(registry, keys, frame):
    original, public = frame
    new, _ = keys
    good = payload(original, BOXES, 5, [new.public])
    moved = (BOX_A, Box(BOX_B.x + 2, BOX_B.y, BOX_B.w, BOX_B.h))
    rec = reconstructor(registry, [new])
    with pytest.raises(SealedFacesError) as info:
        rec.reconstruct_image(reseal(public, good, boxes=moved))  # re-tagged: the AEAD fails
    assert (info.value.extra["reason"], info.value.extra["field"]) == ("forged", "face 2")
    small = encode_face(crop(original, Box(0, 0, 10, 10)))
    faces = [EncodedFace(0, "png", small)]
    wrong = seal_faces(
        faces, BOXES, SealContext(CAMERA_ID, TOY_MODEL_ID, 5), [new.public], CAMERA_KEY
    )
    with pytest.raises(SealedFacesError) as info:
        rec.reconstruct_image(reseal(public, wrong))
    assert info.value.extra["reason"] == "undecodable"


def test_a_payload_moved_without_the_camera_key_is_caught_by_the_message_tag(registry, keys, frame):
    original, public = frame
    new, _ = keys
    replayed = payload(original, BOXES, 3, [new.public])
    forged = reseal(public, replayed, key=b"attacker-guess-of-the-key-012345")
    with pytest.raises(ForgedMessageError):
        reconstructor(registry, [new]).reconstruct_image(forged)


def test_even_without_a_private_key_a_damaged_payload_is_refused(registry, keys, frame):
    original, public = frame
    new, _ = keys
    damaged = flipped(payload(original, BOXES, 5, [new.public]))
    with pytest.raises(SealedFacesError, match="HMAC"):
        reconstructor(registry).reconstruct_image(reseal(public, damaged))


# -- SEI: a sealed payload verifies a message of a lossy stream -----------------------------


def _sei_frame(public, sealed, boxes=BOXES, index=5) -> VideoFrame:
    text = format_v1(
        boxes,
        camera_id=CAMERA_ID,
        model_id=TOY_MODEL_ID,
        frame_index=index,
        key=CAMERA_KEY,
        frame=public,
        sealed=sealed,
    )
    return VideoFrame(7, public, None, (UUNET_SEI_UUID + text.encode(),))


def test_sei_message_is_verified_only_when_a_verified_payload_holds_every_box(keys, frame):
    original, public = frame
    new, _ = keys
    opener = SealedFaceOpener([new], {CAMERA_ID: CAMERA_KEY})
    strict = SeiMessageSource(require_authentication=True, sealed=opener)
    full = payload(original, BOXES, 5, [new.public])
    opened = strict.open(_sei_frame(public, full))
    assert opened.verified and sorted(opened.faces.exact) == [0, 1]
    refusals = [
        (strict, payload(original, BOXES, 5, [new.public], indices=[0])),  # B did not fit
        (strict, None),  # no payload
        # The payload holds every box, but no HMAC can be checked without the camera's key.
        (SeiMessageSource(sealed=SealedFaceOpener([new])), full),
        # The HMAC verifies, but no face opens without the private key.
        (SeiMessageSource(sealed=SealedFaceOpener([], {CAMERA_ID: CAMERA_KEY})), full),
        (SeiMessageSource(), full),  # no opener: the rule before sealed faces
    ]
    for source, sealed in refusals:
        with pytest.raises(UnauthenticatedMessageError, match="sealed payload"):
            source.open(_sei_frame(public, sealed))
    # A frame without faces: an empty payload whose HMAC verifies vouches for its empty message.
    empty = payload(original, (), 5, [new.public])
    assert strict.open(_sei_frame(public, empty, boxes=())).verified
    with pytest.raises(UnauthenticatedMessageError):
        strict.open(_sei_frame(public, None, boxes=()))
    lenient = SeiMessageSource(require_authentication=False, sealed=opener)
    partial = lenient.open(_sei_frame(public, refusals[0][1]))
    assert not partial.verified and partial.faces.ud == {1: "not_in_payload"}
    with pytest.raises(SealedFacesError):
        lenient.open(_sei_frame(public, flipped(full)))


def test_lossy_clip_faces_come_back_from_the_sei_payload(models_dir, registry, keys, tmp_path):
    new, _ = keys
    originals = synthetic_frames(LOSSY_FRAMES, *LOSSLESS_SIZE)
    public = deidentify_lossy_clip(
        originals,
        lambda i, f: BOXES,
        models_dir / TOY_MODEL_ID,
        tmp_path / "public.mp4",
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
        sealed_for=sealer([new.public], codec=lambda i: "png" if i == 0 else "jpeg", quality=95),
    )
    # messages.require_authentication stays on: the payloads verify every message.
    report = reconstructor(registry, [new]).reconstruct_clip(public, tmp_path / "o.mkv")
    assert report.message_source == "sei" and report.verified_frames == LOSSY_FRAMES
    assert report.faces_by_method.sealed == 2 * LOSSY_FRAMES
    jpeg_psnrs = []
    for out, pub in zip(read_frames(tmp_path / "o.mkv"), read_frames(public), strict=True):
        original = originals[out.index]
        for box in BOXES:
            expected = crop(original, box)  # PNG: the original itself
            if out.index > 0:  # the JPEG the edge sealed, as decoded: nothing else is lost
                jpeg = encode_face(expected, "jpeg", 95)
                expected = decode_face(jpeg, "jpeg", box)
                jpeg_psnrs.append(psnr(crop(out.rgb, box), crop(original, box)))
            np.testing.assert_array_equal(crop(out.rgb, box), expected)
            crop(out.rgb, box)[...] = crop(pub.rgb, box)
        np.testing.assert_array_equal(out.rgb, pub.rgb)  # the rest as the codec left it
    assert min(jpeg_psnrs) >= MIN_JPEG_ROI_PSNR_DB, jpeg_psnrs


# -- the report stays bounded ----------------------------------------------------------------


def test_face_methods_list_is_capped_and_counts_what_it_leaves_out():
    methods = FaceMethods()
    boxes = [Box(0, 0, 8, 8)] * 3
    faces = FrameFaces(exact={0: np.zeros((8, 8, 3), np.uint8)}, codecs={0: "png"}, key_id="k1")
    for index in range(MAX_FACE_ENTRIES):
        methods.add(index, faces, boxes)
    assert methods.sealed == MAX_FACE_ENTRIES and methods.ud == 2 * MAX_FACE_ENTRIES
    assert len(methods.faces) == MAX_FACE_ENTRIES
    assert methods.faces_omitted == 2 * MAX_FACE_ENTRIES
    assert methods.ud_reasons == {"no_payload": 2 * MAX_FACE_ENTRIES}
    assert methods.key_ids == ["k1"]
