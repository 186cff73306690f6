"""Preview files: an odd-sized (FFV1) clip is padded to the even size H.264 needs with its
pixels kept; a clip that cannot be read leaves no file; the job-end preview never fails a job."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from fractions import Fraction

import av
import numpy as np
import pytest

from authority_service.job_store import Job
from authority_service.preview_media import make_public_preview, preview_path, write_preview
from authority_service.watermark import Watermark, WatermarkText
from shared.video_io import LosslessWriter, VideoDecodeError
from tests.authority_service.edge_role import synthetic_frames

TEXT = WatermarkText("ivy", "C-1", datetime(2025, 1, 1, tzinfo=timezone.utc), "ab" * 12)


def test_an_odd_sized_clip_is_padded_with_black_and_keeps_its_pixels(tmp_path):
    clip = tmp_path / "odd.mkv"
    frames = synthetic_frames(4, 161, 121)
    with LosslessWriter(clip, 161, 121, 10) as writer:
        for frame in frames:
            writer.write(frame)
    preview = tmp_path / "preview.mp4"
    assert write_preview(clip, preview, "rgb", 10, TEXT) == 4
    mark = Watermark(TEXT, 162, 122)
    with av.open(str(preview)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = list(container.decode(stream))
    assert [f.pts * stream.time_base for f in decoded] == [Fraction(i, 10) for i in range(4)]
    for frame, original in zip(decoded, frames, strict=True):
        rgb = frame.to_ndarray(format="rgb24")
        assert rgb.shape == (122, 162, 3)
        expected = np.zeros_like(rgb)
        expected[:121, :161] = original
        keep = ~mark.mask
        np.testing.assert_array_equal(rgb[keep], expected[keep])


def test_a_clip_that_cannot_be_read_leaves_no_preview(tmp_path):
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"\x1a\x45\xdf\xa3 not really a video" * 10)
    preview = tmp_path / "p.mp4"
    with pytest.raises(VideoDecodeError):
        write_preview(junk, preview, "rgb", 10, TEXT)
    assert list(tmp_path.iterdir()) == [junk]


def test_the_job_end_preview_logs_and_returns_none_for_a_bad_upload(tmp_path, caplog):
    job = Job(**{**_JOB, "id": "cd" * 12})
    junk = tmp_path / "upload.clip"
    junk.write_bytes(b"nothing")
    with caplog.at_level(logging.ERROR):
        assert make_public_preview(tmp_path, job, junk, 15.0) is None
    assert "its public preview cannot be made" in caplog.text
    assert not preview_path(tmp_path, job.id, "public", "rgb").exists()


_JOB = {
    "id": "",
    "owner": "ivy",
    "case_id": "C-1",
    "justification": "A test job for the preview of its upload.",
    "clip_sha256": "00" * 32,
    "clip_bytes": 1,
    "status": "running",
    "frames_done": 0,
    "frames_total": None,
    "created_at": "",
    "started_at": None,
    "finished_at": None,
    "expires_at": "",
    "result_name": None,
    "report": None,
    "error_code": None,
    "error_detail": None,
}
