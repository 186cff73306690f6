"""authority_service.segment_tasks (``jobs.queue: celery``): a long clip's segments, reversed by
two real ``uunet-authority worker`` processes through a real Redis server on the API's SQLite
file and data directory, join into the result one pass gives (the same decoded frames bit for
bit in FFV1, the same report and face data); the first failing frame fails the job as one pass
fails it, leaving no file behind; a worker killed in the middle of a segment costs that segment
a second run, and the job still ends once, with one result and a valid audit chain."""

from __future__ import annotations

import signal
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from authority_service.errors import ForgedMessageError
from authority_service.face_sidecar import FACES_SUFFIX, FaceSidecarWriter, read_face_sidecar
from authority_service.preview_media import preview_path
from authority_service.reconstruction import ClipReport
from authority_service.segment_rows import Segment, SegmentKind, SegmentStatus
from authority_service.segment_store import SegmentStore
from tests.authority_service.conftest import (
    LiveServer,
    settings_for,
    start_server,
)
from tests.authority_service.edge_role import assert_same_frames, forged_copy
from tests.authority_service.worker_processes import (
    Worker,
    audit_trail,
    celery_jobs,
    finished,
    one_face_clip,
    start_worker,
    submit,
    verify_audit_chain,
    wait_ready,
)

FRAMES = 96
SEGMENT_FRAMES = 16  # six segments


@pytest.fixture(scope="module")
def clip(tmp_path_factory, models_dir) -> Path:
    """96 frames of FFV1 evidence (toy Ue, one model-sized face a frame)."""
    return one_face_clip(FRAMES, models_dir, tmp_path_factory.mktemp("clip") / "clip.mkv")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, models_dir, redis_server):
    """The API (it only enqueues) and two workers, FFV1 results, 16-frame segments."""
    root = tmp_path_factory.mktemp("cluster")
    jobs = celery_jobs(redis_server, 5, segment_frames=SEGMENT_FRAMES, result_codec="ffv1")
    api = start_server(settings_for(root, models_dir, **jobs))
    workers = [start_worker(api.services.settings, root, f"worker-{k}") for k in range(2)]
    for worker in workers:  # both take segments from the first one on
        wait_ready(worker)
    yield api, workers
    for worker in workers:
        if worker.process.poll() is None:
            worker.kill()
    api.stop()


@pytest.fixture(scope="module")
def one_pass(cluster, clip, tmp_path_factory) -> tuple[ClipReport, Path, Path]:
    """The clip reversed in one pass by the API's own reconstructor: report, result, faces."""
    api, _ = cluster
    out = tmp_path_factory.mktemp("one-pass")
    with FaceSidecarWriter(out / "faces.jsonl.gz") as faces:
        report = api.services.reconstructor.reconstruct_clip(
            clip, out / "one.mkv", codec="ffv1", on_frame=faces.add
        )
    return report, out / "one.mkv", out / "faces.jsonl.gz"


def _left_behind(api: LiveServer, job_id: str, keep: set[str], timeout: float = 5) -> list[str]:
    """The job's files in the results directory other than ``keep``, once none is left or after
    ``timeout`` s (a stopped segment removes its part at its next frame)."""
    deadline = time.monotonic() + timeout
    while True:
        names = sorted(p.name for p in api.services.settings.results_dir.glob(f"{job_id}*"))
        extra = [name for name in names if name not in keep]
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


def _outputs(job_id: str) -> set[str]:
    """A succeeded clip job's files: result, face data, public preview."""
    public = preview_path(Path(), job_id, "public", "rgb").name
    return {f"{job_id}.mkv", f"{job_id}{FACES_SUFFIX}", public}


def test_clip_split_across_two_workers_is_one_pass_bit_for_bit(cluster, clip, one_pass):
    api, _ = cluster
    report, one_result, one_faces = one_pass
    job_id = submit(api, clip)
    job = finished(api, job_id)
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"frames_done": FRAMES, "frames_total": FRAMES}
    *segments, preview = SegmentStore(api.services.db).segments(job_id)
    assert [s.start for s in segments] == list(range(0, FRAMES, SEGMENT_FRAMES))
    assert preview.kind == SegmentKind.preview  # the public preview, made beside them
    assert {(s.status, s.runs) for s in [*segments, preview]} == {(SegmentStatus.done, 1)}
    assert len({s.worker for s in segments}) == 2  # both workers reversed some
    # released once the job ended (by the joining worker, just after the job's row says so)
    deadline = time.monotonic() + 5
    while any(s.result is not None for s in segments) and time.monotonic() < deadline:
        time.sleep(0.05)
        segments = SegmentStore(api.services.db).segments(job_id)[:-1]
    assert all(s.result is None for s in segments)
    stored = api.services.jobs.store.get(job_id)
    assert {**stored.report, "seconds": 0} == {**asdict(report), "seconds": 0}
    results = api.services.settings.results_dir
    assert_same_frames(results / stored.result_name, one_result, FRAMES)
    ours, theirs = (
        read_face_sidecar(results / f"{job_id}{FACES_SUFFIX}"),
        read_face_sidecar(one_faces),
    )
    assert ours.frames == theirs.frames and ours.boxes == theirs.boxes == FRAMES
    assert _left_behind(api, job_id, _outputs(job_id)) == []
    assert audit_trail(api, job_id) == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "completed"),
    ]


def test_failing_segment_fails_the_job_at_its_first_bad_frame_and_leaves_no_file(
    cluster, clip, tmp_path
):
    api, _ = cluster
    # segments 4 and 1: one pass stops at frame 20
    forged = forged_copy(clip, (70, 20), tmp_path / "forged.mkv")
    with pytest.raises(ForgedMessageError) as one_pass:
        api.services.reconstructor.reconstruct_clip(forged, tmp_path / "one.mkv")
    assert one_pass.value.extra["frame"] == 20
    job_id = submit(api, forged)
    job = finished(api, job_id)
    assert job["status"] == "failed", job
    stored = api.services.jobs.store.get(job_id)
    assert stored.error_code == "forged_message"
    assert stored.error_detail == one_pass.value.detail
    assert stored.error_detail.startswith("frame 20:")
    assert _left_behind(api, job_id, set()) == []  # no result, no part of any segment
    assert audit_trail(api, job_id) == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "refused"),
    ]
    record = [r for r in api.services.audit_log.records(limit=10_000) if r.job_id == job_id][-1]
    assert record.detail.startswith("forged_message: frame 20")


def _freeze_a_running_segment(
    workers: list[Worker], store: SegmentStore, job_id: str, timeout: float = 30
) -> tuple[Worker, Segment]:
    """SIGSTOP the worker (and its pool) holding a segment of ``job_id`` that it is reversing
    (frames, not the preview); return it and the segment (checked still held after the stop:
    frozen mid-segment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for held in store.segments(job_id):
            if held.kind != SegmentKind.frames or held.status != SegmentStatus.running:
                continue
            pid = int(str(held.worker).rsplit(":", 1)[1])
            owner = next((w for w in workers if pid in w.pool()), None)
            if owner is None:
                continue
            owner.signal(signal.SIGSTOP)
            now = store.segments(job_id)[held.segment]
            if (now.status, now.token) == (SegmentStatus.running, held.token):
                return owner, now
            owner.signal(signal.SIGCONT)  # it finished meanwhile: try another
        time.sleep(0.01)
    raise AssertionError(f"no segment of job {job_id} seen running")


def test_worker_killed_mid_segment_costs_it_a_second_run_and_the_job_ends_once(
    cluster, clip, one_pass, tmp_path
):
    api, workers = cluster
    _, one_result, _ = one_pass
    store = SegmentStore(api.services.db)
    job_id = submit(api, clip)
    victim, lost = _freeze_a_running_segment(workers, store, job_id)
    victim.kill()  # its segment's message stays unacknowledged: delivered again in 3 s
    job = finished(api, job_id)
    assert job["status"] == "succeeded", job
    assert job["report"]["frames"] == FRAMES
    segments = store.segments(job_id)
    rerun = segments[lost.segment]
    assert (rerun.status, rerun.runs) == (SegmentStatus.done, 2)
    assert rerun.worker != lost.worker and rerun.token != lost.token
    assert api.services.jobs.store.get(job_id).attempts == 1  # the job itself started once
    assert_same_frames(api.services.settings.results_dir / f"{job_id}.mkv", one_result, FRAMES)
    assert _left_behind(api, job_id, _outputs(job_id)) == []  # the lost run's part too
    assert audit_trail(api, job_id) == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "completed"),  # once
    ]
    verify_audit_chain(api.services.settings, tmp_path)
