"""authority_service.parallel: a clip reversed in segments by worker processes gives what one pass
gives (the real edge agent's evidence and lossy stream: the same decoded frames bit for bit, the
same report, the same faces for ``on_frame``); the first failing frame fails the whole clip or
job as one pass fails it, with nothing left behind; cancelling stops every worker."""

from __future__ import annotations

import logging
import multiprocessing
import shutil
from dataclasses import asdict
from pathlib import Path

import av
import pytest

from authority_service.decoders import DecoderRegistry
from authority_service.errors import ForgedMessageError
from authority_service.jobs import JobStatus
from authority_service.parallel import SegmentedReversal
from authority_service.reconstruction import (
    RESULT_SUFFIX,
    ReconstructionCancelledError,
    Reconstructor,
    message_sources,
)
from authority_service.sealed import SealedFaceOpener
from authority_service.segments import plan_segments
from authority_service.service import build_services
from shared.frame_seal import seal_frame
from shared.sei import build_sei_nal, insert_sei
from tests.authority_service.conftest import (
    CAMERA_ID,
    CAMERA_KEY,
    SECRETS,
    SYNTHETIC_BOXES,
    settings_for,
)
from tests.authority_service.edge_role import (
    assert_same_frames,
    deidentify_clip,
    forged_copy,
    synthetic_frames,
)
from tests.authority_service.edge_run import EdgeRun, run_edge_on_sample
from tests.toy_models import TOY_MODEL_ID, write_toy_model_dir

EDGE_FRAMES = 48  # three segments of 16


@pytest.fixture(scope="module")
def edge(tmp_path_factory) -> EdgeRun:
    """The real edge agent on the sample clip, faces sealed: FFV1 evidence (messages in the
    LSBs) and the lossy H.264 stream (messages in SEI, a keyframe every 30 frames)."""
    out = tmp_path_factory.mktemp("edge")
    package = write_toy_model_dir(out / "ue", decoder=False)  # the camera holds no Ud
    return run_edge_on_sample(out, package, EDGE_FRAMES, seal=True)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory, models_dir) -> Path:
    """256 synthetic frames of FFV1 evidence (toy Ue, one 64x64 face a frame)."""
    return deidentify_clip(
        synthetic_frames(256, 160, 120),
        lambda i, f: [SYNTHETIC_BOXES[0]],
        models_dir / TOY_MODEL_ID,
        tmp_path_factory.mktemp("long") / "long.mkv",
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )


def _reconstructor(models_dir: Path, private_keys=()) -> Reconstructor:
    """As the service builds it; ``max_batch`` small so Ud windows end on faces, not frames."""
    opener = SealedFaceOpener(private_keys, {CAMERA_ID: CAMERA_KEY})
    return Reconstructor(
        DecoderRegistry(models_dir, None, providers="cpu", threads=1),
        message_sources({CAMERA_ID: CAMERA_KEY}, sealed=opener),
        max_batch=8,
        sealed=opener,
    )


def _faces(records):
    """``on_frame`` records, comparable: index, boxes, which boxes opened exactly and how."""
    return [
        (i, boxes, sorted(f.exact), f.codecs, f.ud, f.key_id, f.missing_key_ids)
        for i, boxes, f in records
    ]


def _both_ways(reconstructor: Reconstructor, clip: Path, out: Path, codec: str):
    """One pass and 2 workers over 16-frame segments: (reports, on_frame records, progress,
    the segmented run)."""
    suffix = RESULT_SUFFIX[codec]
    one_faces, seg_faces, progress = [], [], []
    one = reconstructor.reconstruct_clip(
        clip, out / f"one{suffix}", codec=codec, on_frame=lambda *r: one_faces.append(r)
    )
    reversal = SegmentedReversal(reconstructor, workers=2, segment_frames=16)
    segmented = reversal.run(
        clip,
        out / f"seg{suffix}",
        codec=codec,
        on_frame=lambda *r: seg_faces.append(r),
        progress=lambda done, total: progress.append(done),
    )
    assert sorted(p.name for p in out.iterdir()) == [f"one{suffix}", f"seg{suffix}"]  # no parts
    return (one, segmented), (_faces(one_faces), _faces(seg_faces)), progress, reversal


def _without_time(report) -> dict:
    values = asdict(report)
    values.pop("seconds")
    return values


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["ffv1", "libx264rgb"])
def test_edge_evidence_in_segments_is_one_pass_bit_for_bit(models_dir, edge, tmp_path, codec):
    reconstructor = _reconstructor(models_dir)  # no private key: every face through Ud
    reports, faces, progress, reversal = _both_ways(reconstructor, edge.evidence, tmp_path, codec)
    one, segmented = reports
    assert len(reversal.results) == 3 and segmented.frames == EDGE_FRAMES
    assert one.faces == edge.faces and one.faces_by_method.ud == edge.faces
    assert one.faces_by_method.ud_reasons == {"key_not_held": edge.faces}
    assert one.message_source == "lsb" and one.verified_frames == EDGE_FRAMES
    assert _without_time(segmented) == _without_time(one)
    assert faces[1] == faces[0] and len(faces[0]) == EDGE_FRAMES
    assert progress == sorted(progress) and progress[-1] == EDGE_FRAMES
    assert_same_frames(
        tmp_path / f"one{RESULT_SUFFIX[codec]}",
        tmp_path / f"seg{RESULT_SUFFIX[codec]}",
        EDGE_FRAMES,
    )


@pytest.mark.slow
def test_edge_lossy_stream_in_segments_decodes_mid_gop_as_one_pass(models_dir, edge, tmp_path):
    # Segments 1 and 2 start at frames 16 and 32, between keyframes (every 2 s: 30 frames).
    assert all(seek < pts[0] for _, pts, seek in plan_segments(edge.lossy, 16)[1:])
    reconstructor = _reconstructor(models_dir, [edge.private_key])  # SEI verified by the seal
    reports, faces, _, reversal = _both_ways(reconstructor, edge.lossy, tmp_path, "ffv1")
    one, segmented = reports
    assert len(reversal.results) == 3
    assert one.message_source == "sei" and one.verified_frames == EDGE_FRAMES
    assert one.faces_by_method.sealed == edge.faces  # pasted back exactly, none through Ud
    assert _without_time(segmented) == _without_time(one) and faces[1] == faces[0]
    assert_same_frames(tmp_path / "one.mkv", tmp_path / "seg.mkv", EDGE_FRAMES)


@pytest.mark.slow
def test_failing_segment_fails_the_job_at_the_first_bad_frame_and_leaves_no_file(
    models_dir, long_clip, tmp_path
):
    # segments 12 and 2: one pass stops at frame 40
    forged = forged_copy(long_clip, (200, 40), tmp_path / "forged.mkv")
    with pytest.raises(ForgedMessageError) as one_pass:
        _reconstructor(models_dir).reconstruct_clip(forged, tmp_path / "one.mkv")
    assert one_pass.value.extra["frame"] == 40

    settings = settings_for(tmp_path, models_dir, jobs={"segment_workers": 2, "segment_frames": 16})
    services = build_services(settings, camera_keys=SECRETS.camera_keys)
    job_id = services.jobs.new_job_id()
    shutil.copy(forged, services.jobs.upload_path(job_id))
    services.jobs.submit(
        job_id=job_id,
        owner="ivy",
        case_id="CASE-9",
        justification="Needed for the robbery of 12 May.",
        clip_sha256="00" * 32,
        clip_bytes=forged.stat().st_size,
        frames_total=256,
    )
    services.jobs._run(services.jobs.store.get(job_id))  # what a job worker thread does
    job = services.jobs.store.get(job_id)
    assert job.status == JobStatus.failed and job.error_code == "forged_message"
    assert job.error_detail == one_pass.value.detail and job.error_detail.startswith("frame 40:")
    assert list(settings.results_dir.iterdir()) == []  # no result, no segment file
    record = services.audit_log.records()[-1]
    assert record.outcome == "refused" and record.detail.startswith("forged_message: frame 40")
    services.close()


@pytest.mark.slow
def test_cancelling_stops_every_worker_and_leaves_no_file(models_dir, long_clip, tmp_path):
    done: list[int] = []
    reversal = SegmentedReversal(_reconstructor(models_dir), workers=2, segment_frames=32)
    with pytest.raises(ReconstructionCancelledError):
        reversal.run(
            long_clip,
            tmp_path / "out.mkv",
            progress=lambda frames, total: done.append(frames),
            cancelled=lambda: bool(done),  # as soon as the first frames are done
        )
    assert multiprocessing.active_children() == []  # the worker processes are gone
    assert done and max(done) < 256 / 2  # stopped, not run to the end
    assert list(tmp_path.iterdir()) == []


def _write_h264_rgb_with_sei(path: Path, frames, messages) -> Path:
    """Lossless H.264 RGB (libx264rgb qp 0: the LSBs survive) with an SEI message per frame,
    inserted as the edge's lossy output inserts it."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w", format="matroska") as container:
        stream = container.add_stream("libx264rgb", rate=15)
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        stream.options = {"qp": "0", "preset": "ultrafast", "g": "8"}
        pending = dict(enumerate(messages))

        def mux(packets) -> None:
            for packet in packets:
                rewritten = av.Packet(
                    insert_sei(bytes(packet), build_sei_nal(pending.pop(packet.pts)))
                )
                rewritten.pts, rewritten.dts = packet.pts, packet.dts
                rewritten.time_base, rewritten.is_keyframe = packet.time_base, packet.is_keyframe
                rewritten.stream = stream
                container.mux(rewritten)

        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            mux(stream.encode(frame))
        mux(stream.encode(None))
    return path


@pytest.mark.slow
def test_segment_that_chose_another_carrier_is_reversed_again_with_the_clips(
    models_dir, tmp_path, caplog
):
    # Every frame carries an (empty) message in SEI; from frame 16 on the LSBs carry a signed
    # one too. One pass reads SEI throughout (chosen on frame 0); segments 1 and 2, on their
    # own, would read the LSBs.
    frames = synthetic_frames(48, 160, 120)
    for index in range(16, 48):
        seal_frame(
            frames[index],
            [SYNTHETIC_BOXES[0]],
            camera_id=CAMERA_ID,
            model_id=TOY_MODEL_ID,
            frame_index=index,
            key=CAMERA_KEY,
            inplace=True,
        )
    clip = _write_h264_rgb_with_sei(tmp_path / "both.mkv", frames, ["0,"] * 48)
    lenient = Reconstructor(
        DecoderRegistry(models_dir, None, providers="cpu", threads=1),
        message_sources({CAMERA_ID: CAMERA_KEY}, require_authentication=False),
    )
    out = tmp_path / "out"
    out.mkdir()
    caplog.set_level(logging.INFO, logger="authority_service.parallel")
    reports, faces, _, _ = _both_ways(lenient, clip, out, "ffv1")
    one, segmented = reports
    assert one.message_source == "sei" and one.faces == 0 and one.frames_with_message == 48
    assert _without_time(segmented) == _without_time(one) and faces[1] == faces[0]
    assert "segment 1: reversed again, with carrier sei" in caplog.text
    assert_same_frames(out / "one.mkv", out / "seg.mkv", EDGE_FRAMES)
