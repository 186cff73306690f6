"""edge_agent.config and load_edge_settings: strict keys, env overrides, secrets, example file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.cli import load_edge_settings
from edge_agent.config import DEFAULT_MODEL_DIR, EdgeSettings
from edge_agent.credentials import CAMERA_KEY_ENV, NOISE_KEY_ENV, camera_key, noise_key
from shared.config_base import ConfigError, SecretNotFoundError
from shared.detectors import create_detector

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "edge.example.yml"


def test_defaults_are_valid_and_point_at_the_default_model():
    settings = load_edge_settings(None)
    assert settings.model.dir == DEFAULT_MODEL_DIR
    assert settings.detector.kind == "yunet"
    assert settings.seal.message_format == "v1"
    assert settings.failure.action == "black"
    assert settings.outputs.evidence is None
    assert settings.sealed_faces.recipients == []  # sealing faces is off unless configured
    assert (settings.sealed_faces.codec, settings.sealed_faces.sei) == ("png", "jpeg")
    # faces in shadow: the detector's second, brightened pass is on by default
    assert settings.detector.detector_options().low_light_gamma == 0.5


@pytest.mark.parametrize("max_input_side", [None, 640])
def test_detector_shrinks_only_above_1280_px_and_only_when_asked(max_input_side):
    """Full size by default at every size (recall is the leak); with ``max_input_side: 640``
    only frames above ``shrink_above_side`` (1080p) take the shrunk path."""
    settings = load_edge_settings(None)
    assert settings.detector.max_input_side is None
    options = settings.detector.model_copy(update={"max_input_side": max_input_side})
    detector = create_detector(settings.detector.kind, options.detector_options())
    seen = []
    detect = detector._detect
    detector._detect = lambda image: seen.append(image.shape[:2]) or detect(image)
    for width, height in ((640, 360), (640, 480), (1280, 720), (1920, 1080)):
        seen.clear()
        detector.detect(np.full((height, width, 3), 128, np.uint8))  # bright: one pass each
        if width <= 1280 or max_input_side is None:  # the full-size path, as before
            assert seen == [(height, width)]
        else:  # 1080p: the 640 pass, then a full-resolution tile (2 x 2, 64 px overlap)
            assert seen == [(360, 640), (604, 1024)]


def test_unknown_and_invalid_keys_name_their_path(tmp_path):
    path = tmp_path / "edge.yml"
    path.write_text(
        "camera: {id: 'bad id!'}\n"
        "detector: {score_threshold: 3, low_light_gamma: 1.5, colour: red}\n"
        "outputs: {rtsp: {url: 'http://x'}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_edge_settings(path)
    problems = "\n".join(caught.value.problems)
    assert "camera.id:" in problems
    assert "detector.score_threshold:" in problems
    assert "detector.low_light_gamma:" in problems
    assert "detector.colour: unknown key" in problems
    assert "outputs.rtsp.url:" in problems
    assert str(path) in str(caught.value)


def test_file_not_a_mapping_or_missing_raises(tmp_path):
    path = tmp_path / "list.yml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_edge_settings(path)
    with pytest.raises(ConfigError, match="cannot read file"):
        load_edge_settings(tmp_path / "none.yml")


def test_environment_overrides_file_and_command_line_merges_deeply(tmp_path, monkeypatch):
    path = tmp_path / "edge.yml"
    path.write_text("source: {url: a.mp4, queue_size: 9}\ndetector: {min_face_size: 30}\n")
    monkeypatch.setenv("UUNET_EDGE_DETECTOR__MIN_FACE_SIZE", "24")
    settings = load_edge_settings(path, {"source": {"realtime": True}})
    assert settings.detector.min_face_size == 24
    assert (settings.source.url, settings.source.queue_size, settings.source.realtime) == (
        "a.mp4",
        9,
        True,
    )


def test_example_file_documents_a_valid_configuration():
    settings = load_edge_settings(EXAMPLE)
    assert isinstance(settings, EdgeSettings)
    text = EXAMPLE.read_text()
    # every settings key is documented in the example file
    for section, model in EdgeSettings.model_fields.items():
        assert f"{section}:" in text, section
        annotation = model.annotation
        fields = getattr(annotation, "model_fields", {})
        for key in fields:
            assert f"{key}:" in text, f"{section}.{key} undocumented"


def test_camera_key_from_environment_or_credentials_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(CAMERA_KEY_ENV, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(SecretNotFoundError, match=CAMERA_KEY_ENV):
        camera_key()
    (tmp_path / "camera-key").write_text("from-credentials-0123456789\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert camera_key() == b"from-credentials-0123456789"
    monkeypatch.setenv(CAMERA_KEY_ENV, "from-env-0123456789abcdef")
    assert camera_key() == b"from-env-0123456789abcdef"


def test_noise_key_is_random_per_process_unless_configured(monkeypatch):
    monkeypatch.delenv(NOISE_KEY_ENV, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    first, second = noise_key(), noise_key()
    assert len(first) == 32 and first != second
    monkeypatch.setenv(NOISE_KEY_ENV, "fixed-noise")
    assert noise_key() == noise_key() == b"fixed-noise"


def test_margins_low_threshold_must_be_below_the_detector_threshold_and_zones_are_checked():
    settings = load_edge_settings(
        None, {"margins": {"zones": [{"points": [[0, 0], [0.5, 0], [0.5, 0.5]]}]}}
    )
    assert settings.margins.lookahead_frames == 5 and settings.tracker.hold_velocity
    assert settings.margins.zones[0].cover == "black"
    with pytest.raises(ValueError, match="low_score_threshold"):
        load_edge_settings(None, {"margins": {"low_score_threshold": 0.6}})
    with pytest.raises(ValueError):
        load_edge_settings(None, {"margins": {"zones": [{"points": [[0, 0], [2, 0], [1, 1]]}]}})


def test_margins_detect_every_needs_the_lookahead_to_wait_for_the_next_detection():
    assert load_edge_settings(None).margins.detect_every == 1
    settings = load_edge_settings(None, {"margins": {"detect_every": 3, "lookahead_frames": 2}})
    assert settings.margins.detect_every == 3
    with pytest.raises(ValueError, match="lookahead_frames >= 2"):
        load_edge_settings(None, {"margins": {"detect_every": 3, "lookahead_frames": 1}})


def test_model_gpu_keys_become_provider_options_and_bad_profiles_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "edge.yml"
    path.write_text(
        "model:\n  max_batch: 8\n  gpu: {fp16: true, trt_engine_cache_dir: /var/cache/trt,"
        " trt_batch_opt: 2}\n"
    )
    monkeypatch.setenv("UUNET_EDGE_MODEL__GPU__DEVICE_ID", "1")
    gpu = load_edge_settings(path).model.gpu.gpu_options()
    assert (gpu.device_id, gpu.fp16, gpu.trt_engine_cache_dir) == (1, True, Path("/var/cache/trt"))
    assert gpu.batch_profile(8) == (1, 2, 8)
    monkeypatch.delenv("UUNET_EDGE_MODEL__GPU__DEVICE_ID")
    default = load_edge_settings(None).model.gpu.gpu_options()
    assert (default.fp16, default.trt_engine_cache_dir, default.batch_profile(16)) == (
        False,
        None,
        (1, 16, 16),
    )
    # a profile smaller than the batches Ue is fed would rebuild the engine mid-stream
    with pytest.raises(ConfigError, match="below max_batch 16"):
        load_edge_settings(None, {"model": {"gpu": {"trt_batch_max": 4}}})
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        load_edge_settings(None, {"model": {"gpu": {"trt_batch_min": 8, "trt_batch_opt": 2}}})
    with pytest.raises(ConfigError, match=r"model\.gpu\.device_id:"):
        load_edge_settings(None, {"model": {"gpu": {"device_id": -1}}})
    with pytest.raises(ConfigError, match=r"model\.gpu\.int8: unknown key"):
        load_edge_settings(None, {"model": {"gpu": {"int8": True}}})
    text = EXAMPLE.read_text()
    for key in ("gpu:", "device_id:", "fp16:", "trt_engine_cache_dir:", "trt_batch_min:"):
        assert key in text, f"model.gpu {key} undocumented"
    assert "trt_batch_opt:" in text and "trt_batch_max:" in text
