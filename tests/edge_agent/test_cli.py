"""uunet-edge: exit codes and messages for bad input; a real run; SIGTERM finishes a segment."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.config import CAMERA_KEY_ENV
from shared.frame_seal import open_frame
from shared.video_io import read_frames
from tests.edge_agent.conftest import CAMERA_KEY
from tests.toy_models import write_toy_model_dir

REPO = Path(__file__).resolve().parents[2]


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_with_missing_source_exits_3(toy_model, camera_key_env, capsys, tmp_path):
    code, _, err = _run(
        ["run", "--source", tmp_path / "none.mp4", "--model", toy_model, "--metrics-port", 0],
        capsys,
    )
    assert code == 3 and "source file not found" in err


def test_run_with_wrong_model_input_shape_exits_4(sample_clip, camera_key_env, capsys, tmp_path):
    bad = write_toy_model_dir(tmp_path / "bad", ue_channels=3)
    code, _, err = _run(["run", "--source", sample_clip, "--model", bad], capsys)
    assert code == 4 and "input 'x' has shape" in err and "expected ['N', 4, 64, 64]" in err


def test_run_with_missing_model_dir_exits_4(sample_clip, camera_key_env, capsys, tmp_path):
    code, _, err = _run(["run", "--source", sample_clip, "--model", tmp_path / "nomodel"], capsys)
    assert code == 4 and "model directory not found" in err


def test_run_with_unknown_detector_exits_5(sample_clip, toy_model, camera_key_env, capsys):
    code, _, err = _run(
        ["run", "--source", sample_clip, "--model", toy_model, "--detector", "nope"], capsys
    )
    assert code == 5 and "unknown detector 'nope'" in err


def test_run_without_camera_key_exits_6(sample_clip, toy_model, monkeypatch, capsys):
    monkeypatch.delenv(CAMERA_KEY_ENV, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    code, _, err = _run(["run", "--source", sample_clip, "--model", toy_model], capsys)
    assert code == 6 and CAMERA_KEY_ENV in err and "--message-format paper" in err


def test_run_with_short_camera_key_exits_6(sample_clip, toy_model, monkeypatch, capsys):
    monkeypatch.setenv(CAMERA_KEY_ENV, "short")
    code, _, err = _run(["run", "--source", sample_clip, "--model", toy_model], capsys)
    assert code == 6 and "at least 16 bytes" in err


def test_run_with_bad_config_exits_2_naming_the_key(tmp_path, capsys):
    config = tmp_path / "edge.yml"
    config.write_text("tracker: {max_missed: -1}\noutputs: {evidence: {codec: h264, path: x}}\n")
    code, _, err = _run(["run", "--config", config], capsys)
    assert code == 2
    assert "tracker.max_missed:" in err and "outputs.evidence.codec:" in err


def test_validate_config_reports_ok_and_problems(
    tmp_path, toy_model, sample_clip, camera_key_env, capsys
):
    good = tmp_path / "good.yml"
    good.write_text(f"source: {{url: '{sample_clip}'}}\nmodel: {{dir: '{toy_model}'}}\n")
    code, out, _ = _run(["validate-config", good], capsys)
    assert code == 0 and "OK" in out
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "source: {url: 'ftp://x/y'}\nmodel: {dir: '/nonexistent'}\ndetector: {kind: nope}\n"
    )
    code, _, err = _run(["validate-config", bad], capsys)
    assert code == 2
    assert "source.url: unsupported source scheme 'ftp'" in err
    assert "model.dir:" in err and "detector.kind: unknown detector 'nope'" in err


def test_run_quick_form_with_paper_format_needs_no_key(
    sample_clip, toy_model, monkeypatch, capsys, tmp_path
):
    monkeypatch.delenv(CAMERA_KEY_ENV, raising=False)
    out_file = tmp_path / "public.mkv"
    code, out, _ = _run(
        [
            "run", "--source", sample_clip, "--model", toy_model, "--evidence", out_file,
            "--message-format", "paper", "--max-frames", 5, "--metrics-port", 0,
        ],
        capsys,
    )  # fmt: skip
    assert code == 0
    summary = json.loads(out)
    assert summary["frames_processed"] == 5 and summary["counters"]["frames_emitted"] == 5
    frames = list(read_frames(out_file))
    assert len(frames) == 5
    assert all(open_frame(f.rgb).version == "paper" and open_frame(f.rgb).boxes for f in frames)


@pytest.mark.slow
def test_sigterm_finishes_the_current_segment_and_exits_0(sample_clip, toy_model, tmp_path):
    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(60)
    env = {
        **os.environ,
        CAMERA_KEY_ENV: CAMERA_KEY.decode(),
        "NOTIFY_SOCKET": str(notify),
        "PYTHONPATH": str(REPO),
    }
    evidence = tmp_path / "evidence"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "edge_agent", "run", "--source", str(sample_clip),
            "--model", str(toy_model), "--evidence", str(evidence), "--realtime",
            "--metrics-port", "0", "--camera-id", "cam-test",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert listener.recv(1024).startswith(b"READY=1")
        deadline = time.monotonic() + 60
        while not list(evidence.glob("*.partial")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # let some frames through
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        listener.close()
    assert process.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped"] == "signal SIGTERM"
    emitted = summary["counters"]["frames_emitted"]
    assert 0 < emitted < 90
    (segment,) = list(evidence.iterdir())
    assert segment.suffix == ".mkv"  # finished and renamed, no .partial left
    frames = list(read_frames(segment))
    assert len(frames) == emitted
    for frame in frames:
        open_frame(frame.rgb, {"cam-test": CAMERA_KEY}, require_authentication=True)


def test_console_script_is_declared_and_its_target_runs():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["uunet-edge"] == "edge_agent.cli:main"
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from edge_agent.cli import main; sys.exit(main())",
         "--version"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("uunet-edge ")


def test_run_with_a_model_that_fails_the_privacy_thresholds_exits_4(
    sample_clip, camera_key_env, capsys, tmp_path
):
    linkable = write_toy_model_dir(tmp_path / "linkable", x_a_auc=0.82)
    code, _, err = _run(["run", "--source", sample_clip, "--model", linkable], capsys)
    assert code == 4
    assert "error (model)" in err and "x_a AUC 0.820 > 0.750" in err
    assert "Traceback" not in err


def test_validate_config_names_a_model_without_privacy_figures(toy_model, tmp_path, capsys):
    unmeasured = write_toy_model_dir(tmp_path / "unmeasured", x_a_auc=None)
    config = tmp_path / "edge.yml"
    config.write_text(
        "camera: {id: cam-1}\n"
        f"source: {{url: {REPO / 'edge_agent' / 'samples' / 'street_faces.mp4'}}}\n"
        f"model: {{dir: {unmeasured}}}\n"
        "seal: {message_format: paper}\n",
        encoding="utf-8",
    )
    code, _, err = _run(["validate-config", config], capsys)
    assert code == 2 and "model.dir:" in err and "no measured privacy figures" in err
