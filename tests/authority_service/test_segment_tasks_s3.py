"""authority_service.segment_tasks with ``storage.kind: s3``: workers that share no folder
(each its own data directory, as on other hosts) split a long clip through a real S3-compatible
server (moto's), a real Redis server and the API's database; the result is the one a single
pass gives, bit for bit (FFV1), every part is stored in the bucket by the worker that made it
and gone from it once the job ends, and no host keeps a copy of the clip or a part. A part that
is missing from the bucket when the parts are joined has its segment reversed again."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from authority_service.face_sidecar import FACES_SUFFIX, FaceSidecarWriter, read_face_sidecar
from authority_service.preview_media import preview_path
from authority_service.s3_store import ACCESS_KEY_ID_ENV_VAR, SECRET_ACCESS_KEY_ENV_VAR
from authority_service.segment_rows import SegmentKind, SegmentStatus
from authority_service.segment_store import SegmentStore
from tests.authority_service.conftest import (
    settings_for,
    start_server,
)
from tests.authority_service.edge_role import assert_same_frames
from tests.authority_service.worker_processes import (
    audit_trail,
    celery_jobs,
    download,
    finished,
    one_face_clip,
    start_worker,
    submit,
    verify_audit_chain,
    wait_ready,
)

FRAMES = 64
SEGMENT_FRAMES = 16  # four segments


@pytest.fixture(scope="module")
def clip(tmp_path_factory, models_dir) -> Path:
    return one_face_clip(FRAMES, models_dir, tmp_path_factory.mktemp("clip") / "clip.mkv")


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, models_dir, redis_server, s3):
    """The API (it only enqueues) and two workers, each with a data directory of its own, the
    clips in one bucket; the database is the API's."""
    root = tmp_path_factory.mktemp("hosts")
    bucket = s3.new_bucket()
    credentials = {ACCESS_KEY_ID_ENV_VAR: s3.access_key_id, SECRET_ACCESS_KEY_ENV_VAR: s3.secret}
    storage = {
        "kind": "s3",
        "s3": {"bucket": bucket, "endpoint_url": s3.url, "max_attempts": 1},
    }
    jobs = celery_jobs(redis_server, 7, segment_frames=SEGMENT_FRAMES, result_codec="ffv1")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in credentials.items():
            patch.setenv(name, value)
        api = start_server(settings_for(root / "api", models_dir, storage=storage, **jobs))
        settings = api.services.settings
        database = {"url": settings.database_url}
        workers = []
        for k in range(2):
            own = settings.model_copy(
                update={
                    "data_dir": root / f"host-{k}",
                    "database": settings.database.model_copy(update=database),
                }
            )
            workers.append((own, start_worker(own, root, f"worker-{k}", credentials)))
        for _, worker in workers:  # both take segments from the first one on
            wait_ready(worker)
        yield api, workers, bucket
        for _, worker in workers:
            if worker.process.poll() is None:
                worker.kill()
        api.stop()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def test_clip_split_across_two_hosts_through_the_bucket_is_one_pass_bit_for_bit(
    hosts, clip, s3, tmp_path
):
    api = hosts[0]
    with FaceSidecarWriter(tmp_path / "faces.jsonl.gz") as faces:
        report = api.services.reconstructor.reconstruct_clip(
            clip, tmp_path / "one.mkv", codec="ffv1", on_frame=faces.add
        )
    job_id = submit(api, clip)
    job = finished(api, job_id)
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"frames_done": FRAMES, "frames_total": FRAMES}
    *segments, preview = SegmentStore(api.services.db).segments(job_id)
    assert [s.start for s in segments] == list(range(0, FRAMES, SEGMENT_FRAMES))
    assert preview.kind == SegmentKind.preview
    assert {(s.status, s.runs) for s in [*segments, preview]} == {(SegmentStatus.done, 1)}
    hosts_used = {s.worker for s in segments}
    assert len(hosts_used) == 2  # both workers reversed some

    result = download(api, job, tmp_path / "result.mkv")
    assert_same_frames(result, tmp_path / "one.mkv", FRAMES)
    stored = api.services.jobs.store.get(job_id)
    assert stored.report["frames"] == report.frames
    ours = read_face_sidecar(api.services.jobs.clips.cached(f"results/{job_id}{FACES_SUFFIX}"))
    theirs = read_face_sidecar(tmp_path / "faces.jsonl.gz")
    assert ours.frames == theirs.frames and ours.boxes == theirs.boxes == FRAMES

    _assert_only_the_result_left(hosts, s3, job_id, tmp_path)


def _assert_only_the_result_left(hosts, s3, job_id: str, tmp_path: Path) -> None:
    """In the bucket, of ``job_id``: its result, face data and public preview (no upload, no
    part); no host keeps a copy of the clip or a part; the audit trail of one job and one
    download, in a valid chain."""
    api, workers, bucket = hosts
    stored = api.services.jobs.store.get(job_id)
    public = preview_path(Path(), job_id, "public", "rgb").name
    expected = {f"results/{n}" for n in (stored.result_name, f"{job_id}{FACES_SUFFIX}", public)}
    assert {key for key in s3.keys(bucket) if job_id in key} == expected
    for settings, _ in workers:
        assert [n for n in _files(settings.data_dir / "scratch") if job_id in n] == []
    assert audit_trail(api, job_id) == [
        ("reconstruct_clip", "granted"),
        ("reconstruct_clip", "completed"),
        ("download_result", "granted"),
    ]
    verify_audit_chain(api.services.settings, tmp_path)


def _delete_first_part(
    client, bucket: str, found: list[str], listing: threading.Event, stop: threading.Event
) -> None:
    """Delete the first segment part a worker stores in the bucket, recording its key in
    ``found``: the join runs only once every other unit has ended, at least three of them
    after this one (it is never the last part of the clip to exist). ``listing`` is set once
    the bucket has been listed (a boto3 client costs ~1 s to make: ``client`` is made before)."""
    while not stop.is_set():
        listed = client.list_objects_v2(Bucket=bucket, Prefix="results/")
        listing.set()
        for key in (item["Key"] for item in listed.get("Contents", [])):
            if ".seg" in key and key.endswith(".part"):
                client.delete_object(Bucket=bucket, Key=key)
                found.append(key)
                return
        time.sleep(0.005)


def test_part_missing_from_the_bucket_at_the_join_has_its_segment_reversed_again(
    hosts, clip, s3, tmp_path
):
    api, _, bucket = hosts
    api.services.reconstructor.reconstruct_clip(clip, tmp_path / "one.mkv", codec="ffv1")
    found: list[str] = []
    listing, stop = threading.Event(), threading.Event()
    watcher = threading.Thread(
        target=_delete_first_part, args=(s3.client(), bucket, found, listing, stop)
    )
    watcher.start()
    try:
        assert listing.wait(30), "the bucket could not be listed"
        job_id = submit(api, clip)
        job = finished(api, job_id)
    finally:
        stop.set()
        watcher.join()
    assert len(found) == 1 and found[0].startswith(f"results/{job_id}.seg"), found
    assert job["status"] == "succeeded", job
    *segments, preview = SegmentStore(api.services.db).segments(job_id)
    _, lost, lost_token, _ = found[0].rsplit(".", 3)
    again = segments[int(lost.removeprefix("seg"))]
    assert again.status == SegmentStatus.done and again.token != lost_token  # a second run
    others = [s for s in [*segments, preview] if s is not again]
    assert {(s.status, s.runs) for s in others} == {(SegmentStatus.done, 1)}

    assert_same_frames(download(api, job, tmp_path / "result.mkv"), tmp_path / "one.mkv", FRAMES)
    _assert_only_the_result_left(hosts, s3, job_id, tmp_path)
