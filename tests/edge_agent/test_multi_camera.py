"""edge_agent.multi_camera: several cameras in one process, with real files, the real agent and
real keys; the settings of a ``cameras:`` map."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent import cli
from edge_agent.cli import load_edge_settings
from edge_agent.config import camera_settings
from edge_agent.credentials import CAMERA_KEY_ENV, camera_key, camera_key_env
from edge_agent.multi_camera import build_multi_camera_agent
from shared.config_base import ConfigError
from shared.frame_seal import open_frame
from shared.roi_message import MessageAuthenticationError
from shared.video_io import read_frames

KEYS = {"cam-a": b"key-of-camera-a-0123456789", "cam-b": b"key-of-camera-b-9876543210"}


@pytest.fixture
def camera_keys(monkeypatch):
    monkeypatch.delenv(CAMERA_KEY_ENV, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    for camera_id, key in KEYS.items():
        monkeypatch.setenv(camera_key_env(camera_id), key.decode())
    return KEYS


def _settings(toy_model, cameras, **extra):
    return load_edge_settings(
        None,
        {
            "model": {"dir": str(toy_model), "threads": 1},
            "metrics": {"enabled": False},
            "cameras": cameras,
            **extra,
        },
    )


def _camera(source, evidence, **extra):
    return {
        "source": {"url": str(source)},
        "outputs": {"evidence": {"path": str(evidence)}},
        **extra,
    }


def test_camera_key_names_and_variables_follow_the_camera_id(tmp_path, monkeypatch):
    assert camera_key_env("lobby-2") == "UUNET_EDGE_CAMERA_KEY_LOBBY_2"
    assert camera_key_env(None) == CAMERA_KEY_ENV
    monkeypatch.delenv(camera_key_env("gate.1"), raising=False)
    (tmp_path / "camera-key-gate.1").write_text("gate-key-from-credentials-0123\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert camera_key("gate.1") == b"gate-key-from-credentials-0123"


def test_cameras_map_refuses_top_level_sources_empty_entries_and_clashing_ids(toy_model, tmp_path):
    clip = tmp_path / "c.mp4"
    good = _camera(clip, tmp_path / "a.mkv")
    with pytest.raises(ConfigError, match="source, outputs at the top level"):
        _settings(toy_model, {"a": good}, source={"url": str(clip)}, outputs={"hls": {"dir": "x"}})
    with pytest.raises(ConfigError, match="no output configured for this camera"):
        _settings(toy_model, {"a": {"source": {"url": str(clip)}, "outputs": {}}})
    with pytest.raises(ConfigError, match="share the camera id or key variable"):
        _settings(toy_model, {"cam-1": good, "cam.1": good})
    with pytest.raises(ConfigError, match="share the camera id"):
        _settings(toy_model, {"a": {**good, "id": "x"}, "b": {**good, "id": "x"}})
    with pytest.raises(ConfigError, match=r"cameras\.a\.margins\.low_score_threshold"):
        _settings(toy_model, {"a": {**good, "margins": {"low_score_threshold": 0.9}}})


def test_camera_settings_take_the_entry_over_the_shared_sections(toy_model, tmp_path):
    zone = {"points": [[0, 0], [0.2, 0], [0.2, 0.2]]}
    settings = _settings(
        toy_model,
        {
            "lobby": _camera(tmp_path / "l.mp4", tmp_path / "l.mkv", margins={"zones": [zone]}),
            "gate": {**_camera(tmp_path / "g.mp4", tmp_path / "g.mkv"), "id": "gate-7"},
        },
        detector={"min_face_size": 24},
        metrics={"enabled": True, "port": 9999},
    )
    lobby, gate = camera_settings(settings, "lobby"), camera_settings(settings, "gate")
    assert (lobby.camera.id, gate.camera.id) == ("lobby", "gate-7")
    assert gate.source.url == str(tmp_path / "g.mp4")
    assert gate.outputs.evidence.path == tmp_path / "g.mkv"
    assert len(lobby.margins.zones) == 1 and gate.margins == settings.margins
    assert lobby.detector.min_face_size == gate.detector.min_face_size == 24
    assert not lobby.metrics.enabled and not lobby.cameras  # the process serves the metrics


def test_two_cameras_share_one_model_session_and_each_seals_with_its_own_key_and_noise(
    toy_model, camera_keys, sample_clip, tmp_path
):
    settings = _settings(
        toy_model,
        {
            "cam-a": _camera(sample_clip, tmp_path / "a.mkv"),
            "cam-b": _camera(sample_clip, tmp_path / "b.mkv"),
        },
        max_frames=30,
    )
    agent = build_multi_camera_agent(settings)
    first, second = (camera.agent.processor for camera in agent.cameras)
    assert first.deidentifier.encoder is second.deidentifier.encoder  # one Ue session
    assert first.detector is not second.detector  # detectors keep per-call state
    results = agent.run()
    assert {camera_id: r.frames_processed for camera_id, r in results.items()} == {
        "cam-a": 30,
        "cam-b": 30,
    }
    public = {
        camera_id: [f.rgb for f in read_frames(tmp_path / f"{camera_id[-1]}.mkv")]
        for camera_id in KEYS
    }
    # Track 1 of one camera and track 1 of the other get other noise planes (the toy model
    # ignores its noise, so the planes are compared, not the surrogates).
    planes = [p.deidentifier.noise.plane(1) for p in (first, second)]
    assert planes[0].shape == planes[1].shape and not np.array_equal(*planes)
    for index, (frame_a, frame_b) in enumerate(zip(public["cam-a"], public["cam-b"], strict=True)):
        message_a = open_frame(frame_a, {"cam-a": KEYS["cam-a"]})
        message_b = open_frame(frame_b, {"cam-b": KEYS["cam-b"]})
        assert (message_a.camera_id, message_b.camera_id) == ("cam-a", "cam-b")
        assert message_a.frame_index == message_b.frame_index == index
        with pytest.raises(MessageAuthenticationError):  # one camera's key is not another's
            open_frame(frame_a, {"cam-a": KEYS["cam-b"]})
        assert message_a.boxes == message_b.boxes  # one frame path: the same faces covered


def test_a_camera_whose_run_fails_is_restarted_alone_and_the_other_finishes(
    toy_model, camera_keys, sample_clip, tmp_path
):
    settings = _settings(
        toy_model,
        {
            "cam-a": {
                **_camera(sample_clip, tmp_path / "a"),
                "source": {
                    "url": str(sample_clip),
                    "reconnect_initial_s": 0.1,
                    "reconnect_max_s": 0.1,
                },
            },
            "cam-b": _camera(sample_clip, tmp_path / "b"),
        },
        max_frames=20,
    )
    agent = build_multi_camera_agent(settings)
    failing = agent.cameras[0]

    def broken_run(*_args, **_kwargs):
        raise RuntimeError("an encoder thread died")

    failing.agent.run = broken_run  # this camera's first run breaks; its rebuild does not
    results = agent.run()
    assert results["cam-b"].frames_processed == 20
    assert results["cam-a"].frames_processed == 20  # rebuilt and run again
    assert failing.restarts == 1 and failing.stats.get("camera_restarts") == 1


def test_cli_names_the_camera_that_cannot_be_built_and_exits_with_its_code(
    toy_model, camera_keys, sample_clip, tmp_path, monkeypatch, capsys
):
    config = tmp_path / "edge.yml"
    config.write_text(
        f"model: {{dir: {toy_model}, threads: 1}}\n"
        "metrics: {enabled: false}\n"
        "cameras:\n"
        f"  cam-a: {{source: {{url: {sample_clip}}}, "
        f"outputs: {{evidence: {{path: {tmp_path}/a}}}}}}\n"
        f"  cam-b: {{source: {{url: {tmp_path}/missing.mp4}}, "
        f"outputs: {{evidence: {{path: {tmp_path}/b}}}}}}\n"
    )
    assert cli.main(["run", "--config", str(config)]) == cli.EXIT_SOURCE
    assert "camera 'cam-b'" in capsys.readouterr().err
    monkeypatch.delenv(camera_key_env("cam-b"))
    assert cli.main(["validate-config", str(config)]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert "cameras.cam-b.source.url" in err and "cameras.cam-b.secret camera-key-cam-b" in err
    assert "cam-a" not in err


def test_cli_runs_every_camera_and_prints_each_ones_summary(
    toy_model, camera_keys, sample_clip, tmp_path, capsys
):
    config = tmp_path / "edge.yml"
    config.write_text(
        f"model: {{dir: {toy_model}, threads: 1}}\n"
        "metrics: {enabled: false}\n"
        "max_frames: 10\n"
        "cameras:\n"
        + "".join(
            f"  {camera_id}: {{source: {{url: {sample_clip}}}, "
            f"outputs: {{evidence: {{path: {tmp_path}/{camera_id}.mkv}}}}}}\n"
            for camera_id in KEYS
        )
    )
    assert cli.main(["run", "--config", str(config)]) == cli.EXIT_OK
    import json

    summary = json.loads(capsys.readouterr().out)["cameras"]
    assert {camera_id: s["frames_processed"] for camera_id, s in summary.items()} == {
        "cam-a": 10,
        "cam-b": 10,
    }
    for camera_id in KEYS:
        assert len(list(read_frames(tmp_path / f"{camera_id}.mkv"))) == 10
