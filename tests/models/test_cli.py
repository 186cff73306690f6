"""uunet-train end to end in subprocesses: train, kill -9, resume, export; bad input exits 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from models.runloop import RunDir
from shared.model_dir import load_encoder
from tests.media import REPO
from tests.models.tiny import tiny_deid_config, tiny_matcher_config

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "models.cli", *args],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _write(config: object, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return path


@pytest.fixture(scope="module")
def trained_da(tmp_path_factory) -> Path:
    """A tiny Da run with a checkpoint and held-out figures (what Learning II requires)."""
    root = tmp_path_factory.mktemp("da")
    config = _write(tiny_matcher_config(steps=3), root / "matcher.yml")
    done = _cli("matcher", "--config", str(config), "--run", str(root / "da"), "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "da"


def test_deid_without_a_trained_matcher_exits_2(tmp_path):
    path = _write(tiny_deid_config(), tmp_path / "deid.yml")
    result = _cli("deid", "--config", str(path), "--run", str(tmp_path / "uu"))
    assert result.returncode == 2 and "matcher_run: a trained Da run is required" in result.stderr
    untrained = tmp_path / "da"
    untrained.mkdir()
    _write(tiny_matcher_config(), untrained / "config.yml")
    path = _write(tiny_deid_config(matcher_run=untrained), tmp_path / "deid2.yml")
    result = _cli("deid", "--config", str(path), "--run", str(tmp_path / "uu"))
    assert result.returncode == 2 and "Da is not trained" in result.stderr


def test_deid_refuses_a_matcher_of_other_labels_or_size(tmp_path, trained_da):
    reordered = tiny_deid_config(
        matcher_run=trained_da, labels=("id", "ethnicity", "gender", "hairstyle")
    )
    path = _write(reordered, tmp_path / "deid.yml")
    result = _cli("deid", "--config", str(path), "--run", str(tmp_path / "uu"))
    assert result.returncode == 2 and "same names in the same order" in result.stderr
    bigger = tiny_deid_config(matcher_run=trained_da, input_size=32)
    path = _write(bigger, tmp_path / "deid2.yml")
    result = _cli("deid", "--config", str(path), "--run", str(tmp_path / "uu2"))
    assert result.returncode == 2 and "Da takes 16x16 crops" in result.stderr


@pytest.mark.slow
def test_train_kill_resume_export(tmp_path, trained_da):
    deid_cfg = _write(
        tiny_deid_config(matcher_run=trained_da, steps=400, checkpoint_every=2, log_every=1),
        tmp_path / "deid.yml",
    )
    args = ["deid", "--config", str(deid_cfg), "--run", str(tmp_path / "uu"), "--no-progress"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "models.cli", *args],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = tmp_path / "uu" / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)  # no chance to save anything more
    proc.wait(timeout=30)
    assert checkpoint.exists()
    import torch

    killed_at = torch.load(checkpoint, weights_only=False)["step"]
    assert 0 < killed_at < 400

    resumed = _cli(*args, "--steps", str(killed_at + 4))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout.splitlines()[-1])["step"] == killed_at + 4
    steps = [r["step"] for r in RunDir(tmp_path / "uu").read_history() if "mse" in r]
    assert steps == list(range(1, killed_at + 5))  # continuous: nothing lost, nothing twice

    exported = _cli("export", "--run", str(tmp_path / "uu"), "--out", str(tmp_path / "model"))
    assert exported.returncode == 0, exported.stderr[-2000:]
    model, card = load_encoder(tmp_path / "model", providers="cpu")
    assert card.model_id == json.loads(exported.stdout)["model_id"] == model.model_id


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly(tmp_path, trained_da):
    deid_cfg = _write(
        tiny_deid_config(
            matcher_run=trained_da, steps=100000, checkpoint_every=100000, log_every=1
        ),
        tmp_path / "deid.yml",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "models.cli",
            "deid",
            "--config",
            str(deid_cfg),
            "--run",
            str(tmp_path / "uu"),
            "--no-progress",
        ],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    history = tmp_path / "uu" / "history.jsonl"
    deadline = time.monotonic() + 240
    while not (history.exists() and history.read_text().count("\n") >= 2):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert (tmp_path / "uu" / "checkpoint.pt").exists()
    assert json.loads(out.splitlines()[-1])["step"] >= 2


def test_bad_config_exits_2_naming_the_key(tmp_path):
    config = tiny_deid_config().model_dump(mode="json")
    config["s"] = [1, 1, 1, 0]
    config["unknown_key"] = 3
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(config))
    result = _cli("deid", "--config", str(path), "--run", str(tmp_path / "uu"))
    assert result.returncode == 2
    assert "unknown_key: unknown key" in result.stderr


def test_missing_pack_exits_2(tmp_path):
    config = tiny_matcher_config().model_dump(mode="json")
    config["data"] = {"source": "packed", "packed": str(tmp_path / "nope.npz")}
    path = tmp_path / "m.yml"
    path.write_text(yaml.safe_dump(config))
    result = _cli("matcher", "--config", str(path), "--run", str(tmp_path / "da"))
    assert result.returncode == 2
    assert "nope.npz" in result.stderr


def test_export_of_a_non_run_exits_2(tmp_path):
    result = _cli("export", "--run", str(tmp_path), "--out", str(tmp_path / "m"))
    assert result.returncode == 2 and "config.yml" in result.stderr


def test_pack_subcommand_packs_a_tracklet_folder_and_refuses_a_missing_one(tmp_path):
    from models.data import PackedFaces, make_synthetic_tracklets

    made = make_synthetic_tracklets(
        tmp_path / "faces", n_subjects=3, sequences=2, frames=2, size=32, seed=0
    )
    result = _cli(
        "pack",
        "--out",
        str(tmp_path / "p.npz"),
        "--size",
        "16",
        "--folder",
        str(made.tracklets_root),
        "--folder-labels",
        str(made.labels_csv),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    pack = PackedFaces.open(tmp_path / "p.npz")
    assert len(pack) == 12 and pack.size == 16 and pack.n_subjects == 3
    missing = _cli("pack", "--out", str(tmp_path / "q.npz"), "--folder", str(tmp_path / "none"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_evaluate_is_a_subcommand_and_refuses_missing_media(tmp_path, capsys):
    from models.cli import main

    assert main(["evaluate", "--media", str(tmp_path / "none"), "--out", str(tmp_path / "r")]) == 2
    assert "media folder not found" in capsys.readouterr().err
