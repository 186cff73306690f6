"""authority_service.segments: plans cut a clip at multiples of 16 frames and start each segment at
a keyframe; a segment decodes, preroll dropped, to exactly the frames a read of the whole file
gives; a plan the decoded frames contradict is an error, not a silent shift."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from authority_service.segments import SegmentPlanError, SegmentSpec, plan_segments, read_segment
from edge_agent.samples.make_sample import SAMPLE
from shared.video_io import LosslessWriter, probe, read_frames
from tests.authority_service.edge_role import synthetic_frames


def _spec(source, plan, k: int) -> SegmentSpec:
    start, pts, seek = plan[k]
    return SegmentSpec(
        index=k,
        source=source,
        part=source.with_suffix(".part"),
        start=start,
        pts=pts,
        seek_pts=seek,
        last=k == len(plan) - 1,
        info=probe(source),
        codec="ffv1",
    )


def test_plan_of_an_all_keyframe_clip_seeks_to_each_segments_first_frame(tmp_path, evidence_clip):
    clip = tmp_path / "ffv1.mkv"  # FFV1 as the edge writes evidence: every frame a keyframe
    with LosslessWriter(clip, 64, 48, 15) as writer:
        for frame in synthetic_frames(40, 64, 48):
            writer.write(frame)
    plan = plan_segments(clip, 16)
    assert [(start, len(pts)) for start, pts, _ in plan] == [(0, 16), (16, 16), (32, 8)]
    assert [seek for _, _, seek in plan] == [None, plan[1][1][0], plan[2][1][0]]
    assert plan_segments(evidence_clip, 16) is None  # 12 frames: one pass


def test_segment_of_a_b_frame_h264_clip_decodes_from_its_keyframe_to_the_same_frames():
    # The sample clip is H.264 with B-frames and a single keyframe (frame 0).
    plan = plan_segments(SAMPLE, 32)
    assert [(start, len(pts)) for start, pts, _ in plan] == [(0, 32), (32, 32), (64, 26)]
    assert [seek for _, _, seek in plan] == [None, plan[0][1][0], plan[0][1][0]]
    whole = list(read_frames(SAMPLE))
    for k in (1, 2):
        got = list(read_segment(_spec(SAMPLE, plan, k)))
        expected = whole[plan[k][0] : plan[k][0] + len(plan[k][1])]
        assert [f.index for f in got] == [f.index for f in expected]
        assert [f.time for f in got] == [f.time for f in expected]
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a.rgb, b.rgb)


def test_frames_that_do_not_match_the_plan_are_a_plan_error():
    plan = plan_segments(SAMPLE, 32)
    spec = _spec(SAMPLE, plan, 1)
    shifted = replace(spec, pts=(*spec.pts[1:], spec.pts[-1] + 1))  # a frame "missing"
    with pytest.raises(SegmentPlanError, match="segment 1: frame 63 has pts"):
        list(read_segment(shifted))
    longer = replace(spec, pts=(*spec.pts, 10**9))  # a frame the decoder never gives
    with pytest.raises(SegmentPlanError, match="segment 1: frame 64 has pts"):
        list(read_segment(longer))


def test_plan_needs_a_multiple_of_16_frames(evidence_clip):
    with pytest.raises(ValueError, match="multiple of 16"):
        plan_segments(evidence_clip, 20)
