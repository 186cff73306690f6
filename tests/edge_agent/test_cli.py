"""uunet-edge: exit codes and messages for bad input; a real run; SIGTERM finishes a segment."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.credentials import CAMERA_KEY_ENV
from shared.frame_seal import open_frame
from shared.sealed_faces import SealContext, open_sealed_faces
from shared.sealing_keys import generate_key_pair, load_private_key
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
    bad = write_toy_model_dir(tmp_path / "bad", ue_channels=3, decoder=False)
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


@pytest.mark.parametrize(
    ("key", "reason"),
    [("demo-camera-key-change-me", "placeholder"), ("abcdefghabcdefghabcdefgh", "entropy")],
)
def test_run_with_weak_camera_key_exits_6_like_the_authority(
    sample_clip, toy_model, tmp_path, monkeypatch, capsys, key, reason
):
    monkeypatch.setenv(CAMERA_KEY_ENV, key)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    code, _, err = _run(["run", "--source", sample_clip, "--model", toy_model], capsys)
    assert code == 6 and reason in err and key not in err
    config = tmp_path / "edge.yml"
    config.write_text(f"source: {{url: '{sample_clip}'}}\nmodel: {{dir: '{toy_model}'}}\n")
    code, _, err = _run(["validate-config", config], capsys)
    assert code == 2 and "secret camera-key: secret 'camera-key' " in err and reason in err


def test_run_or_validate_with_no_output_is_a_config_error_exit_2(
    sample_clip, toy_model, camera_key_env, tmp_path, capsys
):
    """Before: the run went through and discarded every frame (exit 0)."""
    code, out, err = _run(
        ["run", "--source", sample_clip, "--model", toy_model, "--metrics-port", 0], capsys
    )
    assert code == 2 and "no output configured" in err and out == ""
    config = tmp_path / "edge.yml"
    config.write_text(f"source: {{url: '{sample_clip}'}}\nmodel: {{dir: '{toy_model}'}}\n")
    code, _, err = _run(["validate-config", config], capsys)
    assert code == 2 and "outputs: no output configured" in err


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
    good.write_text(
        f"source: {{url: '{sample_clip}'}}\nmodel: {{dir: '{toy_model}'}}\n"
        f"outputs: {{evidence: {{path: '{tmp_path / 'ev'}'}}}}\n"
    )
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
    messages = [open_frame(f.rgb, require_authentication=False) for f in frames]
    assert all(m.version == "paper" and m.boxes for m in messages)


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


def test_run_logs_one_escaped_line_per_record(toy_model, camera_key_env, capsys, tmp_path):
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers.clear()  # as in a fresh process
    try:
        _run(["run", "--source", tmp_path / "none.mp4", "--model", toy_model], capsys)
        logging.getLogger("edge_agent").warning("source %s", "a.mp4\nERROR forged")
        err = capsys.readouterr().err
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
    assert err.endswith("WARNING edge_agent: source a.mp4\\nERROR forged\n")
    assert "\nERROR forged" not in err


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _edge_command(*args) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, CAMERA_KEY_ENV: CAMERA_KEY.decode(), "PYTHONPATH": str(REPO)}
    env.pop("CREDENTIALS_DIRECTORY", None)
    return [sys.executable, "-m", "edge_agent", "run", *map(str, args)], env


def test_exit_on_source_failure_gives_up_on_an_rtsp_url_that_never_answers(toy_model, tmp_path):
    url = f"rtsp://127.0.0.1:{_closed_port()}/cam"
    argv, env = _edge_command(
        "--source", url, "--model", toy_model, "--metrics-port", 0, "--exit-on-source-failure",
        "--evidence", tmp_path / "evidence",
    )  # fmt: skip
    env["UUNET_EDGE_SOURCE__OPEN_TIMEOUT_S"] = "1.5"
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert f"error (source): source {url} did not open within 1.5 s" in done.stderr
    assert json.loads(done.stdout)["frames_processed"] == 0


def test_without_exit_on_source_failure_an_unreachable_url_is_retried_until_sigterm(
    toy_model, tmp_path
):
    argv, env = _edge_command(
        "--source", f"rtsp://127.0.0.1:{_closed_port()}/cam", "--model", toy_model,
        "--metrics-port", 0, "--evidence", tmp_path / "evidence",
    )  # fmt: skip
    env["UUNET_EDGE_SOURCE__OPEN_TIMEOUT_S"] = "1"
    process = subprocess.Popen(
        argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    failures = threading.Semaphore(0)
    lines: list[str] = []

    def read_stderr() -> None:
        for line in process.stderr:
            lines.append(line)
            if "reconnecting in" in line:
                failures.release()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert failures.acquire(timeout=120), "".join(lines)
        time.sleep(2.5)  # past the open timeout: a daemon keeps trying
        assert process.poll() is None, "".join(lines)
        process.send_signal(signal.SIGTERM)
        out = process.stdout.read()
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, "".join(lines)
    assert json.loads(out)["counters"]["source_reconnects"] >= 2


def _truncated_copies(sample: Path, tmp_path: Path) -> dict[str, Path]:
    """The sample re-muxed so a cut copy still opens: MJPEG AVI (frame count in its header)
    and H.264 MP4 with the index first; each cut to a third of its bytes."""
    cuts = {}
    for name, codec in (("clip.avi", ["-c:v", "mjpeg", "-q:v", "5"]),
                        ("clip.mp4", ["-c", "copy", "-movflags", "+faststart"])):  # fmt: skip
        whole = tmp_path / name
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(sample), *codec, str(whole)],
            check=True,
            timeout=120,
        )
        cut = tmp_path / f"cut-{name}"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])  # head -c
        cuts[name] = cut
    return cuts


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
def test_run_on_a_truncated_file_warns_counts_and_exits_8(
    sample_clip, toy_model, camera_key_env, capsys, caplog, tmp_path
):
    cuts = _truncated_copies(sample_clip, tmp_path)
    for name, cut in cuts.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="edge_agent.capture"):
            code, out, err = _run(
                [
                    "run",
                    "--source",
                    cut,
                    "--model",
                    toy_model,
                    "--metrics-port",
                    0,
                    "--evidence",
                    tmp_path / f"ev-{name}",
                ],
                capsys,
            )
        summary = json.loads(out)
        processed = summary["frames_processed"]
        assert code == 8 and 0 < processed < 90, (name, err)
        (reason,) = summary["labelled"]["source_incomplete"]  # counted once
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert [w for w in warnings if str(cut) in w], name
        if reason == "reason=truncated":
            assert f"ended after {processed} of the 90 frames its container declares" in err
        else:  # the decoder may also fail on the cut packet (MP4)
            assert reason == "reason=decode_error" and name == "clip.mp4"
            assert f"failed while decoding after {processed} frames" in err
        if name == "clip.avi":  # no decoding error: only the frame count tells
            assert reason == "reason=truncated" and processed == 30


def test_run_seal_to_refuses_a_private_garbage_or_missing_key_file_exits_2(
    sample_clip, toy_model, camera_key_env, capsys, tmp_path
):
    private, public = generate_key_pair(tmp_path / "authority")
    garbage = tmp_path / "garbage.pub"
    garbage.write_bytes(b"not a key at all\n")
    secret = private.read_text().splitlines()[1]  # the PEM body: never echoed
    base = ["run", "--source", sample_clip, "--model", toy_model, "--metrics-port", 0]
    for path, reason in [
        (private, "holds a PRIVATE key"),
        (garbage, "is not a PEM or DER public key"),
        (tmp_path / "none.pub", "cannot read the public key"),
    ]:
        code, _, err = _run([*base, "--seal-to", public, "--seal-to", path], capsys)
        assert code == 2, err
        assert err.startswith("error (sealed_faces.recipients): ")
        assert str(path) in err and reason in err
        assert secret not in err and "Traceback" not in err
    code, _, err = _run([*base, "--message-format", "paper", "--seal-to", public], capsys)
    assert code == 2
    assert "sealed_faces.recipients needs seal.message_format v1" in err


def test_run_seal_to_adds_to_the_files_recipients_and_reports_the_counters(
    sample_clip, toy_model, camera_key_env, capsys, tmp_path
):
    first_key, first = generate_key_pair(tmp_path / "a1")
    second_key, second = generate_key_pair(tmp_path / "a2")
    config = tmp_path / "edge.yml"
    config.write_text(f"sealed_faces: {{recipients: ['{first}']}}\n")
    out_file = tmp_path / "public.mkv"
    code, out, _ = _run(
        [
            "run", "--config", config, "--source", sample_clip, "--model", toy_model,
            "--evidence", out_file, "--seal-to", second, "--max-frames", 3, "--metrics-port", 0,
            "--camera-id", "cam-test",
        ],
        capsys,
    )  # fmt: skip
    assert code == 0
    summary = json.loads(out)
    assert summary["counters"]["faces_sealed"] == summary["counters"]["faces_deidentified"] > 0
    assert summary["labelled"]["faces_unsealed"]["reason=capacity"] == 0
    assert summary["mean_latency_ms"]["seal_faces"] > 0
    frame = next(iter(read_frames(out_file)))
    message = open_frame(frame.rgb, {"cam-test": CAMERA_KEY})
    context = SealContext.of(message)
    for key_path in (first_key, second_key):  # sealed to both: either authority key opens it
        private = load_private_key(key_path)
        opened = open_sealed_faces(
            message.sealed, message.boxes, context, {private.key_id: private}, CAMERA_KEY
        )
        assert len(opened.faces) == len(message.boxes)


def test_validate_config_names_a_private_key_among_the_recipients(
    toy_model, sample_clip, camera_key_env, tmp_path, capsys
):
    private, _ = generate_key_pair(tmp_path / "authority")
    config = tmp_path / "edge.yml"
    config.write_text(
        f"source: {{url: '{sample_clip}'}}\nmodel: {{dir: '{toy_model}'}}\n"
        f"sealed_faces: {{recipients: ['{private}']}}\n"
    )
    code, _, err = _run(["validate-config", config], capsys)
    assert code == 2 and f"sealed_faces.recipients: {private} holds a PRIVATE key" in err
