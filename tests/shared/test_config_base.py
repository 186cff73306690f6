"""shared.config_base: strict YAML + environment settings and secrets."""

from __future__ import annotations

import pytest

from shared.config_base import (
    ConfigError,
    SecretNotFoundError,
    StrictModel,
    StrictSettings,
    deep_merge,
    load_settings,
    read_secret,
)


class Detector(StrictModel):
    name: str = "yunet"
    min_size: int = 20


class DemoSettings(StrictSettings, env_prefix="DEMO_"):
    camera_id: str
    detector: Detector = Detector()


def test_yaml_values_load(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("camera_id: cam1\ndetector:\n  min_size: 32\n")
    settings = load_settings(DemoSettings, path)
    assert settings.camera_id == "cam1" and settings.detector.min_size == 32


def test_environment_overrides_file(tmp_path, monkeypatch):
    path = tmp_path / "c.yml"
    path.write_text("camera_id: cam1\ndetector:\n  min_size: 32\n")
    monkeypatch.setenv("DEMO_DETECTOR__MIN_SIZE", "48")
    assert load_settings(DemoSettings, path).detector.min_size == 48


def test_unknown_and_invalid_keys_are_named(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("camera_id: cam1\ncamera_idd: x\ndetector:\n  min_size: big\n  nme: y\n")
    with pytest.raises(ConfigError) as info:
        load_settings(DemoSettings, path)
    problems = "\n".join(info.value.problems)
    assert "camera_idd: unknown key" in problems
    assert "detector.nme: unknown key" in problems
    assert "detector.min_size:" in problems


@pytest.mark.parametrize(
    ("content", "match"),
    [("camera_id: [unclosed", "not valid YAML"), ("- a\n- b\n", "expected a mapping")],
)
def test_bad_yaml_raises(tmp_path, content, match):
    path = tmp_path / "c.yml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_settings(DemoSettings, path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(DemoSettings, tmp_path / "none.yml")


def test_missing_required_key_is_named(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("detector: {}\n")
    with pytest.raises(ConfigError, match="camera_id: Field required"):
        load_settings(DemoSettings, path)


def test_read_secret_prefers_environment(tmp_path, monkeypatch):
    (tmp_path / "hmac_key").write_text("from-file\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_secret("hmac_key", "DEMO_KEY") == b"from-file"
    monkeypatch.setenv("DEMO_KEY", "from-env")
    assert read_secret("hmac_key", "DEMO_KEY") == b"from-env"


def test_read_secret_missing_or_empty_raises(tmp_path, monkeypatch):
    monkeypatch.delenv("DEMO_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(SecretNotFoundError, match="DEMO_KEY"):
        read_secret("hmac_key", "DEMO_KEY")
    (tmp_path / "hmac_key").write_text("\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(SecretNotFoundError):
        read_secret("hmac_key", "DEMO_KEY")


def test_overrides_merge_into_nested_file_values(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("camera_id: cam1\ndetector:\n  name: mtcnn\n  min_size: 32\n")
    settings = load_settings(DemoSettings, path, detector={"min_size": 40})
    assert settings.detector.name == "mtcnn" and settings.detector.min_size == 40


def test_deep_merge_keeps_unnamed_keys_and_replaces_leaves():
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": 3}
    assert deep_merge(base, {"a": {"c": {"d": 5}}, "e": {"f": 1}}) == {
        "a": {"b": 1, "c": {"d": 5}},
        "e": {"f": 1},
    }
    assert base == {"a": {"b": 1, "c": {"d": 2}}, "e": 3}
