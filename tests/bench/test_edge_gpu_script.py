"""bench/edge_gpu.sh, the 1080p GPU benchmark of a lent box: its shape, and a CPU dry run."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.media import REPO

SCRIPT = REPO / "bench" / "edge_gpu.sh"


def test_script_is_executable_parses_and_is_bounded():
    assert os.access(SCRIPT, os.X_OK)
    parsed = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr
    text = SCRIPT.read_text()
    assert "set -euo pipefail" in text
    # every run is under `timeout`, within a budget well inside the 5 minutes
    assert re.search(r"^BUDGET_S=\$\{BUDGET_S:-(\d+)\}", text, re.M)
    assert int(re.search(r"BUDGET_S:-(\d+)", text).group(1)) < 300
    assert text.count("timeout -s TERM") >= 2
    # results under $OUT; nothing fetched (no internet there): wheels only, without an index
    assert ': "${OUT:?' in text and '"$OUT/summary.txt"' in text
    assert "--no-index" in text and "pip download" not in text and "curl" not in text
    assert '--size "$SIZE"' in text and "SIZE=${SIZE:-1920x1080}" in text
    assert "FRAMES=${FRAMES:-150}" in text and "PROVIDERS=${PROVIDERS:-cuda tensorrt}" in text


@pytest.mark.slow
def test_dry_run_on_the_cpu_loops_the_sample_and_reports_each_provider(tmp_path):
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OUT": str(out),
        "RUNS": str(tmp_path / "runs"),
        "PYTHON": sys.executable,
        # the repo's 90-frame sample, played forward and back to 100 frames, at a small size
        "CLIP": str(REPO / "edge_agent" / "samples" / "street_faces.mp4"),
        "SIZE": "320x180",
        "FRAMES": "100",
        "PROVIDERS": "cpu cuda",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        ["bash", str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=200
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "100 frames 320x180" in done.stdout
    summary = (out / "summary.txt").read_text().splitlines()
    assert re.fullmatch(
        r"cpu: \d+\.\d frames/s at 320x180, Ue on CPUExecutionProvider", summary[0]
    ), summary
    assert summary[1].startswith("cuda: not offered by this ONNX Runtime"), summary
    assert "onnxruntime" in (out / "env.txt").read_text()
    table = (out / "edge_cpu.txt").read_text()
    assert "faces de-identified in 100 frames" in table
