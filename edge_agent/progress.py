"""The progress bar of a file run on a terminal: frames (of the file's), frames/s, faces.

Shown only when standard error is a terminal and the source is a file (a live camera has no
end to count towards); a daemon under systemd or a test sees nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from edge_agent.sources import SourceSpec
from edge_agent.stats import Stats
from shared.video_io import VideoDecodeError, probe

__all__ = ["file_run_progress"]


def _total_frames(spec: SourceSpec) -> int | None:
    try:
        return probe(spec.location).frames
    except (OSError, VideoDecodeError):
        return None


def file_run_progress(
    spec: SourceSpec, stats: Stats, stream: TextIO | None = None
) -> tuple[Callable[[], None], Callable[[], None]] | None:
    """``(tick, close)`` for a file run on a terminal, or ``None`` (live source, not a TTY, or
    tqdm missing). ``tick`` is called once per frame handled."""
    stream = stream or sys.stderr
    if spec.live or not stream.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bar = tqdm(
        total=_total_frames(spec),
        desc="frames",
        unit="frame",
        file=stream,
        dynamic_ncols=True,
        smoothing=0.1,
    )

    def tick() -> None:
        bar.update(1)
        if bar.n % 5 == 0:
            bar.set_postfix(faces=int(stats.get("faces_deidentified")), refresh=False)

    def close() -> None:
        bar.set_postfix(faces=int(stats.get("faces_deidentified")), refresh=False)
        bar.close()

    return tick, close
