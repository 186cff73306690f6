"""PNG plots of the evaluation (matplotlib ``Figure`` objects, no pyplot state, no display).

* :func:`decision_environments`: genuine (green) and impostor (red) score histograms side by
  side, titled with AUC and d', like the paper's Fig. 6/7/10;
* :func:`line_plot`: curves such as PSNR vs bitrate (Fig. 13's reversal-vs-codec question);
* :func:`bar_plot`: one value per method (detection kept, AUC per baseline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from models.evaluation.metrics import ScoreSets, decidability, roc_auc

__all__ = ["bar_plot", "decision_environments", "line_plot"]


def decision_environments(
    panels: Sequence[tuple[str, ScoreSets]], path: str | Path, title: str = ""
) -> Path:
    """Histograms of genuine and impostor scores, one panel per ``(label, scores)``.

    Raises:
        ValueError: no panels.
    """
    if not panels:
        raise ValueError("no score sets to plot")
    path = Path(path)
    fig = Figure(figsize=(4.0 * len(panels), 3.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for axis, (label, sets) in zip(axes[0], panels, strict=True):
        low = float(min(sets.genuine.min(), sets.impostor.min()))
        high = float(max(sets.genuine.max(), sets.impostor.max()))
        bins = np.linspace(low, high if high > low else low + 1e-3, 40)
        axis.hist(
            sets.impostor, bins=bins, density=True, color="tab:red", alpha=0.6, label="impostor"
        )
        axis.hist(
            sets.genuine, bins=bins, density=True, color="tab:green", alpha=0.6, label="genuine"
        )
        auc = roc_auc(sets.genuine, sets.impostor)
        try:
            d_prime = f"{decidability(sets.genuine, sets.impostor):.2f}"
        except ValueError:
            d_prime = "n/a"
        axis.set_title(f"{label}\nAUC {auc:.3f}  d' {d_prime}", fontsize=9)
        axis.set_xlabel("similarity")
        axis.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    point_labels: Sequence[str] | None = None,
) -> Path:
    """One line (with markers) per named ``(xs, ys)`` series; ``point_labels`` annotate the
    points of every series in order (e.g. the swept parameter)."""
    path = Path(path)
    fig = Figure(figsize=(5.0, 3.4))
    axis = fig.subplots()
    for name, (xs, ys) in series.items():
        axis.plot(list(xs), list(ys), marker="o", label=name)
        for label, x, y in zip(point_labels or [], xs, ys, strict=False):
            axis.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if logx:
        axis.set_xscale("log")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def bar_plot(
    values: Mapping[str, float], path: str | Path, *, ylabel: str, title: str = ""
) -> Path:
    """One bar per named value."""
    path = Path(path)
    fig = Figure(figsize=(max(4.0, 0.7 * len(values) + 1.5), 3.4))
    axis = fig.subplots()
    names = list(values)
    axis.bar(range(len(names)), [values[n] for n in names], color="tab:blue")
    axis.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title, fontsize=10)
    axis.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
