"""Multi-process training with the real engine: torchrun, DDP, gloo, 2 CPU processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.media import REPO


@pytest.mark.slow
def test_ddp_two_processes_keep_identical_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            "-m",
            "tests.models.ddp_worker",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][:2] == ["2", "3"] and ranks[1][:2] == ["2", "3"]
    # DDP averaged the gradients: both processes hold the same weights after 3 steps.
    assert ranks[0][2] == ranks[1][2]
    # Only rank 0 wrote the checkpoint and samples.
    assert (tmp_path / "checkpoint.pt").is_file()
