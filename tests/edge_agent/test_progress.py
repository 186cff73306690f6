"""The file run's progress bar: on a terminal it counts the file's frames and faces; nothing
on a pipe or for a live source."""

from __future__ import annotations

import io

from edge_agent.app import build_agent
from edge_agent.progress import file_run_progress
from edge_agent.sources import parse_source
from edge_agent.stats import Stats


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_file_run_on_a_terminal_shows_frames_of_the_total_and_faces(
    make_settings, sample_clip, tmp_path
):
    settings = make_settings(
        sample_clip, outputs={"evidence": {"path": str(tmp_path / "e.mkv")}}, max_frames=12
    )
    agent = build_agent(settings)
    screen = Terminal()
    tick, close = file_run_progress(agent.opener.spec, agent.stats, screen)
    result = agent.run(on_frame=tick)
    close()
    text = screen.getvalue()
    faces = int(agent.stats.get("faces_deidentified"))
    assert result.frames_processed == 12 and faces > 0
    assert "12/90" in text  # of the sample clip's 90 frames
    assert f"faces={faces}" in text and "frame/s" in text


def test_no_bar_on_a_pipe_or_for_a_live_source(sample_clip):
    assert file_run_progress(parse_source(str(sample_clip)), Stats(), io.StringIO()) is None
    live = parse_source("rtsp://127.0.0.1:8554/cam")
    assert file_run_progress(live, Stats(), Terminal()) is None
