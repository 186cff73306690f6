"""Pictures of a run: loss curves (matplotlib, Agg) and sample grids (x | a | r)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["plot_curves", "save_sample_grid"]


def plot_curves(history: Sequence[dict[str, Any]], out: Path, title: str = "") -> None:
    """One panel per logged quantity against the step; nothing written for an empty history."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in history[-1] if k not in ("step", "seconds")]
    cols = min(4, max(1, len(keys)))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    steps = [r["step"] for r in history]
    for ax, key in zip(axes.flat, keys, strict=False):
        ax.plot(steps, [r.get(key, np.nan) for r in history], lw=1)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def save_sample_grid(columns: Sequence[torch.Tensor], out: Path, scale: int = 2) -> None:
    """Save rows of images side by side: row i = (columns[0][i] | columns[1][i] | ...).

    Each column is an ``N x 3 x S x S`` tensor in [0,1] (e.g. x, a, r).
    """
    from PIL import Image

    tiles = [c.detach().float().clamp(0, 1).cpu() for c in columns]
    rows = [torch.cat(list(group), dim=2) for group in zip(*tiles, strict=True)]
    grid = torch.cat(rows, dim=1)  # 3 x (N*S) x (C*S)
    array = (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    image = Image.fromarray(array)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    image.save(out)
