"""authority_service.segment_store on SQLite and PostgreSQL: of the segment runs that end at
once exactly one is the last (it joins); a segment is one run's at a time, taken again once its
lease is stale and failing the job after ``max_attempts`` starts; a running segment learns that
an earlier one failed or that the job ended, and its progress becomes the job's."""

from __future__ import annotations

import threading
import time

from authority_service.clip_report import ClipReport
from authority_service.errors import ForgedMessageError
from authority_service.job_store import Claim, JobStatus, JobStore
from authority_service.segment_rows import Finish, SegmentClaim, SegmentStatus, Stop
from authority_service.segment_store import SegmentStore
from authority_service.segments import SegmentResult

WORKER = "host:1"


def _running_job(
    database, segments: int, frames: int = 16, job_id: str = "ab" * 12
) -> tuple[JobStore, SegmentStore, str]:
    """A claimed job (start 1) whose clip is planned into ``segments`` segments."""
    jobs = JobStore(database)
    jobs.create(
        job_id=job_id,
        owner="ivy",
        case_id="CASE-1",
        justification="Needed for the robbery of 12 May.",
        clip_sha256="00" * 32,
        clip_bytes=1,
        frames_total=None,
        ttl_s=3600,
    )
    assert jobs.claim(job_id, lease_s=60, max_attempts=3)[0] == Claim.claimed
    plan = [(k * frames, tuple(range(k * frames, (k + 1) * frames)), None) for k in range(segments)]
    store = SegmentStore(database)
    store.plan(job_id, 1, plan)
    return jobs, store, job_id


def _result(index: int, frames: int = 16, failure: Exception | None = None) -> SegmentResult:
    return SegmentResult(index, ClipReport(frames=frames), "lsb", failure=failure)


def _claim(store: SegmentStore, job_id: str, segment: int, **limits):
    return store.claim(
        job_id, 1, segment, lease_s=limits.get("lease_s", 60), max_attempts=3, worker=WORKER
    )


def _end_at_once(store: SegmentStore, job_id: str, tokens: list[str]) -> list[str]:
    """End every segment's run at the same moment, each in its own thread."""
    barrier = threading.Barrier(len(tokens))
    ends: list[str] = []

    def end(k: int) -> None:
        barrier.wait()
        ends.append(store.finish(job_id, 1, k, tokens[k], _result(k)))

    threads = [threading.Thread(target=end, args=(k,)) for k in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ends


def test_of_segments_ending_at_once_exactly_one_is_the_last(database):
    # Without the table held while the open segments are counted, PostgreSQL's read committed
    # lets two runs ending at once each see the other still open: no one joined 4 jobs of 10.
    for round_ in range(10):
        _, store, job_id = _running_job(database, 2, job_id=f"{round_:024x}")
        tokens = [_claim(store, job_id, k)[1].token for k in range(2)]
        assert sorted(_end_at_once(store, job_id, tokens)) == [Finish.last, Finish.more], round_
    assert store.finish(job_id, 1, 0, tokens[0], _result(0)) == Finish.lost  # a repeat
    segments = store.segments(job_id, 1)
    assert {s.status for s in segments} == {SegmentStatus.done}
    assert segments[1].result.report.frames == 16 and segments[1].result.carrier == "lsb"


def test_segment_is_one_runs_taken_again_when_stale_and_fails_the_job_when_out_of_starts(
    database,
):
    jobs, store, job_id = _running_job(database, 2)
    outcome, first = _claim(store, job_id, 0)
    assert outcome == SegmentClaim.claimed and first.runs == 1
    assert _claim(store, job_id, 0)[0] == SegmentClaim.busy  # its lease is fresh
    time.sleep(0.05)
    outcome, second = _claim(store, job_id, 0, lease_s=0.01)  # its worker was lost
    assert outcome == SegmentClaim.claimed and (second.runs, second.token != first.token) == (
        2,
        True,
    )
    assert store.finish(job_id, 1, 0, first.token, _result(0)) == Finish.lost  # the lost run
    time.sleep(0.05)
    assert _claim(store, job_id, 0, lease_s=0.01)[1].runs == 3
    time.sleep(0.05)
    assert _claim(store, job_id, 0, lease_s=0.01)[0] == SegmentClaim.exhausted
    job = jobs.get(job_id)
    assert (job.status, job.error_code) == (JobStatus.failed, "worker_lost")
    assert job.error_detail.startswith("segment 0 of the job was started 3 time(s)")
    assert _claim(store, job_id, 1)[0] == SegmentClaim.gone  # the job no longer runs


def test_running_segment_learns_an_earlier_failure_and_its_progress_is_the_jobs(database):
    jobs, store, job_id = _running_job(database, 3)
    tokens = [_claim(store, job_id, k)[1].token for k in range(3)]
    assert store.beat(job_id, 1, 1, tokens[1], 5) is None
    assert store.beat(job_id, 1, 2, tokens[2], 7) is None
    assert jobs.get(job_id).frames_done == 12  # over all segments
    forged = ForgedMessageError("tag does not match", frame=3)
    assert store.finish(job_id, 1, 0, tokens[0], _result(0, 4, forged)) == Finish.more
    assert store.beat(job_id, 1, 1, tokens[1], 6) == Stop.earlier_failed
    assert store.finish(job_id, 1, 1, tokens[1], None) == Finish.more  # stopped
    assert store.beat(job_id, 1, 2, "another run's", 8) == Stop.lost
    jobs.mark_failed(job_id, "forged_message", "frame 3: tag does not match")
    assert store.beat(job_id, 1, 2, tokens[2], 8) == Stop.ended
    assert store.finish(job_id, 1, 2, tokens[2], _result(2)) == Finish.lost  # its part goes
    first, second, _ = store.segments(job_id, 1)
    assert first.failed and first.result.failure.extra == {"frame": 3}
    assert (second.status, second.result) == (SegmentStatus.stopped, None)


def test_join_is_taken_over_only_once_the_jobs_lease_is_stale(database):
    _, store, job_id = _running_job(database, 2)
    assert store.claim_join(job_id, 1, lease_s=60) == "none"  # segments still open
    for k in range(2):
        token = _claim(store, job_id, k)[1].token
        store.finish(job_id, 1, k, token, _result(k))
    assert store.claim_join(job_id, 1, lease_s=60) == "held"  # the last run joins it
    time.sleep(0.05)
    assert store.claim_join(job_id, 1, lease_s=0.01) == "won"  # that run was lost
    assert store.claim_join(job_id, 1, lease_s=60) == "held"


def test_segment_given_back_at_shutdown_is_queued_with_its_start_back(database):
    _, store, job_id = _running_job(database, 2)
    run = _claim(store, job_id, 1)[1]
    store.give_back(job_id, 1, 1, run.token)
    back = store.get(job_id, 1, 1)
    assert (back.status, back.runs, back.token) == (SegmentStatus.queued, 0, None)
    assert store.beat(job_id, 1, 1, run.token, 3) == Stop.lost  # the interrupted run is over
    outcome, again = _claim(store, job_id, 1)  # at once: no lease to wait out
    assert outcome == SegmentClaim.claimed and again.runs == 1
