"""scripts/train_gpu.sh, dry-run on the CPU with tiny configs: Da, probe, fitted run, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from models.data import make_synthetic_tracklets
from shared.model_dir import load_encoder
from tests.media import REPO
from tests.models.tiny import tiny_deid_config, tiny_matcher_config


@pytest.mark.slow
def test_train_gpu_script_fits_the_run_to_its_budget_and_exports(tmp_path):
    made = make_synthetic_tracklets(
        tmp_path / "faces", n_subjects=8, sequences=2, frames=3, size=32, seed=0
    )
    pack = tmp_path / "faces16.npz"
    packed = subprocess.run(
        [
            sys.executable,
            "-m",
            "models.cli",
            "pack",
            "--out",
            str(pack),
            "--size",
            "16",
            "--codec",
            "webp",
            "--folder",
            str(made.tracklets_root),
            "--folder-labels",
            str(made.labels_csv),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert packed.returncode == 0, packed.stderr[-2000:]
    data = {"source": "packed", "packed": str(pack), "holdout_fraction": 0.25}
    matcher = tiny_matcher_config().model_dump(mode="json") | {"data": data}
    deid = tiny_deid_config().model_dump(mode="json")
    deid["data"] = {**data, "holdout_fraction": 0.0, "subject_policy": "repeat"}
    deid.update(steps=10000, decoder_only_steps=100, checkpoint_every=1000, log_every=10)
    (tmp_path / "m.yml").write_text(yaml.safe_dump(matcher))
    (tmp_path / "d.yml").write_text(yaml.safe_dump(deid))
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "PACK": str(pack),
        "DEVICE": "cpu",
        "BUDGET_S": "160",
        "DA_STEPS": "6",
        # A shared CI box can probe at 2-3x this machine's step time: the bound is what the
        # script must honour, not a speed claim.
        "MIN_STEPS": "40",
        "RUNS": str(tmp_path / "runs"),
        "MATCHER_CONFIG": str(tmp_path / "m.yml"),
        "DEID_CONFIG": str(tmp_path / "d.yml"),
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        ["bash", "scripts/train_gpu.sh"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "ms/step; UU-Net:" in done.stdout
    _, card = load_encoder(tmp_path / "out" / "model", providers="cpu")
    steps = card.raw["training"]["steps"]
    history = [json.loads(line) for line in (tmp_path / "out" / "model" / "history.jsonl").open()]
    fitted = int(done.stdout.split("UU-Net: ")[1].split(" steps")[0])
    assert fitted >= 40
    # SIGTERM at the run's deadline checkpoints, so the export holds every step it logged
    # (history is written every 10 steps).
    assert 0 < steps <= fitted and steps - 10 < history[-1]["step"] <= steps
    assert card.raw["composition"]["resample"] == "smooth"
