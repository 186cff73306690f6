"""Run by torchrun in tests: tiny Learning II under DDP (gloo), then dump the weights' hash."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from models.distributed import init_distributed, shutdown_distributed
from models.face_source import batch_stream
from models.runs import run_deid
from models.train_matcher import build_matcher
from tests.models.tiny import LABELS, tiny_deid_config, tiny_pack


def main() -> None:
    run_dir = Path(sys.argv[1])
    context = init_distributed("cpu")
    torch.manual_seed(0)
    matcher = build_matcher(LABELS, 16)
    config = tiny_deid_config(steps=3)
    pack = tiny_pack(config)
    stream = batch_stream(
        pack, np.arange(pack.n_subjects), config, context.rank, context.world_size
    )
    trainer = run_deid(
        config, run_dir, matcher, stream, torch.rand(2, 3, 16, 16), context, progress=False
    )
    digest = hashlib.sha256()
    for module in (trainer.ue, trainer.ud, trainer.critic):
        for param in module.parameters():  # parameters only: BN buffers stay per-process
            digest.update(param.detach().numpy().tobytes())
    (run_dir / f"rank{context.rank}.txt").write_text(
        f"{context.world_size} {trainer.step_count} {digest.hexdigest()}"
    )
    shutdown_distributed()


if __name__ == "__main__":
    main()
