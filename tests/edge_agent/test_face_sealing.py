"""edge_agent.face_sealing: the replaced faces' original pixels, sealed to the authority's key,
come back bit-exact from the lossless outputs and from the lossy stream's SEI; faces that do not
fit or fail to seal stay Ud-only, counted; without recipients the messages are as before."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from edge_agent.app import build_agent
from edge_agent.face_sealing import FaceSealer, FaceSealingOptions
from edge_agent.pipeline import FrameProcessor
from edge_agent.sources import CapturedFrame
from edge_agent.stats import Stats, StatsCollector
from shared import stego
from shared.detectors import FaceDetection, create_detector
from shared.frame_seal import open_frame
from shared.geometry import Box
from shared.roi_message import RoiMessage, format_v1, parse_v1, verify_v1
from shared.sealed_faces import SealContext, open_sealed_faces
from shared.sealing_keys import generate_key_pair, load_private_key, load_public_key
from shared.sei import parse_sei_payload
from shared.video_io import read_frames
from tests.edge_agent.conftest import CAMERA_ID, CAMERA_KEY, roi_pixels_equal, toy_processor


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    """The authority's key pair: (private key, public key file)."""
    private_path, public_path = generate_key_pair(tmp_path_factory.mktemp("authority"))
    return load_private_key(private_path), public_path


@pytest.fixture(scope="module")
def source_frames(sample_clip):
    return {f.index: f.rgb for f in read_frames(sample_clip)}


class FixedDetector:
    """Detects the same face boxes in every frame."""

    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, frame):
        return [FaceDetection(box, 0.9) for box in self.boxes]


def _processor(toy_model, detector, stats, recipients=(), **options) -> FrameProcessor:
    sealer = None
    if recipients:
        sealer = FaceSealer(FaceSealingOptions(tuple(recipients), **options), CAMERA_KEY, stats)
    return toy_processor(toy_model, detector, stats, face_sealer=sealer)


def _open_faces(message: RoiMessage, private):
    context = SealContext.of(message)
    return open_sealed_faces(
        message.sealed, message.boxes, context, {private.key_id: private}, CAMERA_KEY
    )


def _roi(frame, box):
    return frame[box.y : box.bottom, box.x : box.right]


def _psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def test_run_seals_every_face_bit_exact_into_the_evidence_recording(
    make_settings, tmp_path, sample_clip, source_frames, authority, caplog
):
    private, public_path = authority
    settings = make_settings(
        sample_clip,
        outputs={"evidence": {"path": str(tmp_path / "e.mkv")}},
        sealed_faces={"recipients": [str(public_path)]},
        max_frames=8,
    )
    with caplog.at_level(logging.INFO, logger="edge_agent"):
        agent = build_agent(settings)
    assert f"key id(s) {private.key_id}" in caplog.text  # the recipients logged at start
    assert agent.run().frames_processed == 8
    public = list(read_frames(tmp_path / "e.mkv"))
    assert len(public) == 8
    sealed_faces = 0
    for frame in public:
        message = open_frame(frame.rgb, {CAMERA_ID: CAMERA_KEY}, require_authentication=True)
        assert len(message.boxes) >= 3 and message.sealed is not None
        opened = _open_faces(message, private)
        assert opened.mac_verified and set(opened.codecs.values()) == {"png"}
        assert sorted(opened.faces) == list(range(len(message.boxes)))
        source = source_frames[message.frame_index]
        for index, box in enumerate(message.boxes):
            np.testing.assert_array_equal(opened.faces[index], _roi(source, box))  # bit-exact
            assert roi_pixels_equal(source, frame.rgb, box) < 0.05 * box.area  # the surrogate
            sealed_faces += 1
    stats = agent.stats
    assert stats.get("faces_sealed") == stats.get("faces_deidentified") == sealed_faces
    assert stats.get("faces_unsealed") == 0
    assert stats.get("sealed_bytes") > 0
    assert "seal_faces" in stats.snapshot()["mean_latency_ms"]


@pytest.mark.parametrize("sei", ["png", "jpeg", "off"])
def test_run_lossy_sei_carries_the_sealed_faces_and_a_tag_valid_for_the_lossless_frame(
    make_settings, tmp_path, sample_clip, source_frames, authority, sei
):
    private, public_path = authority
    settings = make_settings(
        sample_clip,
        outputs={
            "evidence": {"path": str(tmp_path / "e.mkv")},
            "lossy": {"target": str(tmp_path / "public.mp4")},
        },
        sealed_faces={"recipients": [str(public_path)], "sei": sei},
        max_frames=6,
    )
    agent = build_agent(settings)
    assert agent.run().frames_processed == 6
    evidence = {}
    for frame in read_frames(tmp_path / "e.mkv"):
        evidence[open_frame(frame.rgb, {CAMERA_ID: CAMERA_KEY}).frame_index] = frame.rgb
    lossy = list(read_frames(tmp_path / "public.mp4"))
    assert len(lossy) == len(evidence) == 6
    worst = float("inf")
    for frame in lossy:
        (payload,) = frame.sei
        text = parse_sei_payload(payload)
        message = parse_v1(text)
        lossless = evidence[message.frame_index]
        verify_v1(message, CAMERA_KEY, lossless)  # the SEI's own tag, over the lossless pixels
        assert (text == stego.extract(lossless)) is (sei == "png")
        if sei == "off":
            assert message.sealed is None and message.boxes
            continue
        opened = _open_faces(message, private)
        assert set(opened.codecs.values()) == {sei}
        assert sorted(opened.faces) == list(range(len(message.boxes)))
        source = source_frames[message.frame_index]
        for index, box in enumerate(message.boxes):
            worst = min(worst, _psnr(opened.faces[index], _roi(source, box)))
    if sei == "png":
        assert worst == float("inf")  # the default: exact
    elif sei == "jpeg":
        # OpenCV's JPEG is 4:2:0: the drawn faces' sharp colour edges cap it near 33 dB (real
        # faces: 40-47 dB at quality 95; see edge_agent/README.md)
        assert 30 < worst < float("inf")
    assert agent.stats.get("faces_unsealed") == 0


def _noise_frame(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_process_face_beyond_the_frames_capacity_stays_ud_only_and_is_counted(toy_model, authority):
    private, public_path = authority
    stats = Stats()
    big, small = Box(10, 10, 48, 48), Box(120, 90, 8, 8)
    processor = _processor(
        toy_model, FixedDetector([big, small]), stats, [load_public_key(public_path)]
    )
    frame = _noise_frame(120, 160)  # 7,200 bytes of LSBs; the big ROI's PNG is about 10 KB
    sealed = processor.process(CapturedFrame(0, frame.copy(), 0.0))
    assert sealed is not None and len(sealed.boxes) == 2
    message = open_frame(sealed.rgb, {CAMERA_ID: CAMERA_KEY}, require_authentication=True)
    assert len(sealed.message) <= stego.capacity(frame.shape)
    opened = _open_faces(message, private)
    small_index = next(i for i, box in enumerate(message.boxes) if box.w < 20)
    assert list(opened.faces) == [small_index]  # the big one did not fit, the small one did
    np.testing.assert_array_equal(
        opened.faces[small_index], _roi(frame, message.boxes[small_index])
    )
    assert stats.get("faces_unsealed", reason="capacity") == 1
    assert stats.get("faces_sealed") == 1
    assert stats.get("fail_closed") == 0
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats))
    exported = generate_latest(registry).decode()
    assert 'uunet_edge_faces_unsealed_total{reason="capacity"} 1.0' in exported
    assert "uunet_edge_faces_sealed_total 1.0" in exported

    tiny = _noise_frame(24, 32)  # not even room for an empty payload: nothing is encoded
    stats_tiny = Stats()
    processor = _processor(
        toy_model, FixedDetector([Box(4, 4, 8, 8)]), stats_tiny, [load_public_key(public_path)]
    )
    sealed = processor.process(CapturedFrame(0, tiny.copy(), 0.0))
    assert sealed is not None and sealed.boxes
    assert open_frame(sealed.rgb, {CAMERA_ID: CAMERA_KEY}).sealed is None
    assert stats_tiny.get("faces_unsealed", reason="capacity") == 1


@pytest.mark.parametrize("failing", ["encode_face", "seal_faces"])
def test_process_sealing_failure_keeps_the_frame_and_counts_the_faces(
    toy_model, sample_clip, authority, monkeypatch, caplog, failing
):
    private, public_path = authority
    source = next(iter(read_frames(sample_clip))).rgb
    stats = Stats()
    processor = _processor(
        toy_model, create_detector("yunet"), stats, [load_public_key(public_path)]
    )
    import edge_agent.face_sealing as module

    real, calls = getattr(module, failing), []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("injected failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, failing, flaky)
    with caplog.at_level(logging.ERROR, logger="edge_agent"):
        sealed = processor.process(CapturedFrame(0, source.copy(), 0.0))
    assert sealed is not None and len(sealed.boxes) >= 3  # the frame still leaves
    message = open_frame(sealed.rgb, {CAMERA_ID: CAMERA_KEY}, require_authentication=True)
    assert "injected failure" in caplog.text and "frame 0" in caplog.text
    if failing == "encode_face":  # one face left out, the others sealed
        assert sorted(_open_faces(message, private).faces) == list(range(1, len(sealed.boxes)))
        assert stats.get("faces_unsealed", reason="error") == 1
        assert stats.get("faces_sealed") == len(sealed.boxes) - 1
    else:  # the whole payload failed: no sealed field, every face Ud-only
        assert message.sealed is None
        assert stats.get("faces_unsealed", reason="error") == len(sealed.boxes)
        assert stats.get("faces_sealed") == 0
    assert stats.get("fail_closed") == 0


def test_process_without_recipients_writes_todays_message_byte_for_byte(
    toy_model, sample_clip, authority
):
    source = next(iter(read_frames(sample_clip))).rgb
    yunet = create_detector("yunet")
    plain = _processor(toy_model, yunet, Stats()).process(CapturedFrame(0, source.copy(), 0.0))
    assert plain is not None and plain.boxes and plain.sei_message is None
    expected = format_v1(
        plain.boxes,
        camera_id=CAMERA_ID,
        model_id=plain.message.split("|")[2],
        frame_index=0,
        key=CAMERA_KEY,
        frame=plain.rgb,
        run_id=parse_v1(plain.message).run_id,  # the run's id, in every message since
    )
    assert plain.message == expected and "|S1:" not in plain.message
    assert stego.extract(plain.rgb) == expected
    with_keys = _processor(toy_model, yunet, Stats(), [load_public_key(authority[1])])
    sealed = with_keys.process(CapturedFrame(0, source.copy(), 0.0))
    assert "|S1:" in sealed.message and sealed.boxes == plain.boxes
    np.testing.assert_array_equal(sealed.rgb & 0xFE, plain.rgb & 0xFE)  # the same picture


@pytest.mark.parametrize("sei", ["jpeg", "off"])
def test_process_a_frame_without_faces_carries_an_empty_payload_that_authenticates_it(
    toy_model, authority, sei
):
    private, public_path = authority
    stats = Stats()
    processor = _processor(
        toy_model, FixedDetector([]), stats, [load_public_key(public_path)], sei=sei
    )
    sealed = processor.process(CapturedFrame(5, _noise_frame(120, 160), 0.0))
    message = parse_v1(sealed.message)
    assert message.boxes == () and message.sealed is not None
    opened = _open_faces(message, private)
    assert opened.faces == {} and opened.mac_verified
    lossy = parse_v1(sealed.lossy_message)
    assert (lossy.sealed is None) == (sei == "off")
    assert stats.snapshot()["counters"]["faces_sealed"] == 0
