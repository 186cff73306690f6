"""Previews and face data of a clip job over real HTTP: watermarked MP4s that decode to the
result's frames and times, byte ranges (206, 416), no-store, the result's access rule, every
frame's boxes, and one audit record per view."""

from __future__ import annotations

import base64
import shutil
import stat
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from authority_service.reconstruction import ClipReport
from authority_service.watermark import Watermark, WatermarkText
from shared.video_io import read_frames
from tests.authority_service.conftest import SMALL_BOX, SYNTHETIC_BOXES, reason, wait_for_job

ROUTE = "/v1/reconstructions"
CASE = "CASE-2024-0042"


def _submit(live, clip: Path) -> tuple[dict, datetime, datetime]:
    """Submit ``clip`` as ivy; return the finished job and when it was submitted and done."""
    headers = live.auth("ivy")
    with live.client() as client:
        submitted = datetime.now(timezone.utc)
        accepted = client.post(
            ROUTE,
            files={"clip": ("clip.mkv", clip.read_bytes(), "application/octet-stream")},
            data=reason(CASE),
            headers=headers,
        )
        assert accepted.status_code == 202, accepted.text
        job = wait_for_job(client, accepted.json()["id"], headers)
    assert job["status"] == "succeeded", job
    return job, submitted, datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def job(live, evidence_clip):
    return _submit(live, evidence_clip)


def _get(live, job_id: str, which: str, variant: str | None = None, user="ivy", **headers):
    params = {"variant": variant} if variant else None
    with live.client() as client:
        return client.get(
            f"{ROUTE}/{job_id}/preview/{which}.mp4",
            params=params,
            headers={**live.auth(user), **headers},
        )


def _decode(data: bytes, path: Path) -> tuple[list[np.ndarray], list[Fraction]]:
    """Frames (RGB) and presentation times of an MP4."""
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(frame.pts * stream.time_base)
    return frames, times


def _watermark(frames, originals, job_id: str, since: datetime, until: datetime) -> Watermark:
    """The watermark, made between ``since`` and ``until``, that explains every pixel where
    ``frames`` differ from ``originals``."""
    height, width = originals[0].shape[:2]
    second = since.replace(microsecond=0) - timedelta(seconds=1)
    while second <= until + timedelta(seconds=1):
        mark = Watermark(WatermarkText("ivy", CASE, second, job_id), width, height)
        keep = ~mark.mask
        if all(np.array_equal(f[keep], o[keep]) for f, o in zip(frames, originals, strict=True)):
            return mark
        second += timedelta(seconds=1)
    raise AssertionError("no watermark of ivy's made then explains the preview's pixels")


def _assert_watermarked(frames, originals, mark: Watermark) -> None:
    """Only the watermark's pixels changed, enough of them, the label reads like text, and the
    faint copies reach every quadrant (cropping a corner does not remove the watermark)."""
    assert 0.05 < mark.mask.mean() < 0.5
    x, y, w, h = mark.label_box
    assert (x, y) == (0, 0) and w > 100 and h > 20
    height, width = originals[0].shape[:2]
    for frame, original in zip(frames, originals, strict=True):
        changed = np.any(frame != original, axis=2)
        assert changed[mark.mask].mean() > 0.6
        label = cv2.cvtColor(frame[y : y + h, x : x + w], cv2.COLOR_RGB2GRAY)
        under = cv2.cvtColor(original[y : y + h, x : x + w], cv2.COLOR_RGB2GRAY)
        ink = label > 200
        assert 0.02 < ink.mean() < 0.4  # white strokes on the darkened box
        assert np.median(label[~ink]) < 0.6 * np.median(under) + 1
        rows = np.flatnonzero(ink.any(axis=1))
        assert np.count_nonzero(np.diff(rows) > 1) + 1 == 3  # three lines of text
        for quadrant in (
            changed[: height // 2, width // 2 :],
            changed[height // 2 :, : width // 2],
            changed[height // 2 :, width // 2 :],
        ):
            assert quadrant.mean() > 0.02


def test_result_and_public_rgb_previews_are_the_exact_frames_and_times_but_watermarked(
    live, job, evidence_clip, tmp_path
):
    body, submitted, done = job
    with live.client() as client:
        result = client.get(body["result_url"], headers=live.auth("ivy"))
    result_frames, result_times = _decode(result.content, tmp_path / "result.mp4")
    before = datetime.now(timezone.utc)
    preview = _get(live, body["id"], "result", "rgb")
    after = datetime.now(timezone.utc)
    assert preview.status_code == 200, preview.text
    assert preview.headers["content-type"] == "video/mp4"
    assert preview.headers["cache-control"] == "no-store"
    assert preview.headers["accept-ranges"] == "bytes"
    assert preview.content.find(b"moov") < preview.content.find(b"mdat")  # plays from byte 0
    frames, times = _decode(preview.content, tmp_path / "preview.mp4")
    assert len(frames) == len(result_frames) == 12
    assert times == result_times == [Fraction(i, 15) for i in range(12)]
    mark = _watermark(frames, result_frames, body["id"], before, after)
    _assert_watermarked(frames, result_frames, mark)

    public = _get(live, body["id"], "public", "rgb")
    assert public.status_code == 200 and public.headers["cache-control"] == "no-store"
    public_frames, public_times = _decode(public.content, tmp_path / "public.mp4")
    uploaded = [f.rgb for f in read_frames(evidence_clip)]
    assert public_times == result_times
    # Made when the job ended, from the upload, which is not kept.
    mark = _watermark(public_frames, uploaded, body["id"], submitted, done)
    _assert_watermarked(public_frames, uploaded, mark)
    assert not live.services.jobs.upload_path(body["id"]).exists()


@pytest.mark.parametrize("variant", ["yuv444", "yuv420"])
def test_yuv_previews_keep_the_frames_times_and_watermark_of_the_rgb_one(
    live, job, variant, tmp_path
):
    body, _, _ = job
    for which in ("public", "result"):
        rgb, _ = _decode(_get(live, body["id"], which, "rgb").content, tmp_path / "rgb.mp4")
        response = _get(live, body["id"], which, variant)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        frames, times = _decode(response.content, tmp_path / f"{variant}.mp4")
        assert times == [Fraction(i, 15) for i in range(12)]
        for frame, exact in zip(frames, rgb, strict=True):
            error = np.abs(frame.astype(np.int16) - exact).mean()
            assert error < (1.5 if variant == "yuv444" else 4.0), (which, error)
    default = _get(live, body["id"], "result")
    assert default.content == _get(live, body["id"], "result", "yuv444").content


def test_previews_and_face_data_are_private_files_deleted_on_expiry(server_factory, evidence_clip):
    server = server_factory()
    body, _, _ = _submit(server, evidence_clip)
    for which in ("public", "result"):
        for variant in ("rgb", "yuv444", "yuv420"):
            assert _get(server, body["id"], which, variant).status_code == 200
    results = server.services.jobs.results_dir
    files = sorted(p.name for p in results.glob(f"{body['id']}.*"))
    assert len(files) == 2 + 6  # result, face data, 2 clips x 3 variants
    for path in results.glob(f"{body['id']}.*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    later = datetime.now(timezone.utc) + timedelta(days=2)
    assert server.services.jobs.sweep(now=later) == 1
    assert not list(results.glob(f"{body['id']}.*"))
    gone = _get(server, body["id"], "public", "rgb")
    with server.client() as client:
        faces = client.get(f"{ROUTE}/{body['id']}/faces", headers=server.auth("ivy"))
    assert gone.status_code == faces.status_code == 410
    assert gone.json()["error"] == faces.json()["error"] == "job_expired"


def test_byte_ranges_206_exact_bytes_and_416_past_the_end(live, job):
    body, _, _ = job
    whole = _get(live, body["id"], "result", "rgb").content
    size = len(whole)
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, size - 1),
        "bytes=-50": (size - 50, size - 1),
        f"bytes=10-{size + 1000}": (10, size - 1),
        f"bytes={size - 1}-": (size - 1, size - 1),
    }
    for header, (first, last) in cases.items():
        response = _get(live, body["id"], "result", "rgb", Range=header)
        assert response.status_code == 206, (header, response.text)
        assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert response.content == whole[first : last + 1]
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["accept-ranges"] == "bytes"
    for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=-0"):
        refused = _get(live, body["id"], "result", "rgb", Range=header)
        assert refused.status_code == 416, header
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert refused.headers["cache-control"] == "no-store"
        assert refused.json()["error"] == "range_not_satisfiable"
    # What a server may ignore is ignored: the whole file.
    for extra in ({"Range": "bytes=0-1,5-6"}, {"Range": "items=0-5"}, {"Range": "bytes=9-3"}):
        response = _get(live, body["id"], "result", "rgb", **extra)
        assert response.status_code == 200 and response.content == whole, extra
    etag = _get(live, body["id"], "result", "rgb").headers["etag"]
    same = _get(live, body["id"], "result", "rgb", Range="bytes=0-9", **{"If-Range": etag})
    stale = _get(live, body["id"], "result", "rgb", Range="bytes=0-9", **{"If-Range": '"old"'})
    assert (same.status_code, len(same.content)) == (206, 10)
    assert (stale.status_code, stale.content) == (200, whole)


def test_access_is_the_results_another_investigator_404_an_auditor_403(live, job):
    body, _, _ = job
    users = live.services.users
    if users.get("ines") is None:
        users.add("ines", users.get("ivy").role, "$argon2id$x")
    other = {"Authorization": f"Bearer {live.services.tokens.issue(users.get('ines'))[0]}"}
    paths = [f"{ROUTE}/{body['id']}/preview/result.mp4", f"{ROUTE}/{body['id']}/faces"]
    with live.client() as client:
        for path in paths:
            assert client.get(path).status_code == 401
            stranger = client.get(path, headers=other)
            assert stranger.status_code == 404 and stranger.json()["error"] == "not_found"
            assert client.get(body["result_url"], headers=other).status_code == 404
            auditor = client.get(path, headers=live.auth("audrey"))
            assert auditor.status_code == 403
    refused = [
        (r.actor, r.action)
        for r in live.services.audit_log.records(limit=10_000)
        if r.outcome == "refused"
    ]
    assert {("ines", "view_preview"), ("ines", "read_faces"), ("audrey", "read_faces")} <= set(
        refused
    )


def test_unfinished_frame_and_bad_variant_requests_are_typed_errors(live):
    store = live.services.jobs.store
    common = {
        "owner": "ivy",
        "case_id": "C-9",
        "justification": "Preview of a job that is not a clip.",
        "clip_sha256": "22" * 32,
        "clip_bytes": 1,
        "frames_total": 1,
        "ttl_s": 600,
    }
    queued = store.create(job_id="1" * 24, **common)
    frame = store.create(job_id="2" * 24, kind="frame", **common)
    store.mark_succeeded(frame.id, f"{frame.id}.png", ClipReport(frames=1, fps=1.0))
    busy = _get(live, queued.id, "result")
    assert busy.status_code == 409 and busy.json()["error"] == "job_not_finished"
    none = _get(live, frame.id, "public")
    assert none.status_code == 404 and none.json()["error"] == "preview_unavailable"
    bad = _get(live, frame.id, "result", "vp9")
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
    with live.client() as client:
        other = client.get(f"{ROUTE}/{frame.id}/preview/raw.mp4", headers=live.auth("ivy"))
    assert other.status_code == 422


def test_faces_lists_every_frame_with_its_boxes_and_methods(live, job):
    body, _, _ = job
    with live.client() as client:
        response = client.get(f"{ROUTE}/{body['id']}/faces", headers=live.auth("ivy"))
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    faces = response.json()
    report = body["report"]
    assert (faces["frame_count"], faces["width"], faces["height"]) == (12, 320, 240)
    assert (faces["fps"], faces["frame_rate"]) == (15.0, "15/1")
    methods = report["faces_by_method"]
    assert faces["faces"] == report["faces"] == 38
    assert (faces["sealed"], faces["ud"], faces["ud_reasons"]) == (
        methods["sealed"],
        methods["ud"],
        methods["ud_reasons"],
    )
    assert [f["index"] for f in faces["frames"]] == list(range(12))
    for frame in faces["frames"]:
        i = frame["index"]
        assert frame["t"] == round(i / 15, 6) and frame["message"] is True
        expected = [] if i == 5 else [*SYNTHETIC_BOXES, *([SMALL_BOX] if i % 2 else [])]
        got = [(b["x"], b["y"], b["w"], b["h"]) for b in frame["boxes"]]
        assert got == [(b.x, b.y, b.w, b.h) for b in expected]
        assert all(b["method"] == "ud" and b["reason"] == "no_payload" for b in frame["boxes"])


def test_one_audit_record_per_view_not_per_range_request(live, evidence_clip):
    body, _, _ = _submit(live, evidence_clip)

    def records() -> list[tuple[str, str]]:
        return [
            (r.action, r.detail or "")
            for r in live.services.audit_log.records(limit=10_000)
            if r.job_id == body["id"] and r.action in ("view_preview", "read_faces")
        ]

    def count_after(*requests) -> int:
        before = len(records())
        for which, header in requests:
            extra = {"Range": header} if header else {}
            assert _get(live, body["id"], which, "rgb", **extra).status_code in (200, 206)
        return len(records()) - before

    # A <video> view: from byte 0, then seeks.
    assert (
        count_after(("result", "bytes=0-"), ("result", "bytes=5000-"), ("result", "bytes=9-99"))
        == 1
    )
    assert count_after(("result", None)) == 1  # a download of the whole file is a view
    assert count_after(("public", "bytes=700-"), ("public", "bytes=800-")) == 1  # first of its clip
    assert count_after(("result", "bytes=0-"), ("result", "bytes=1-")) == 1  # another view
    state = live.services.previews
    window, state.view_window_s = state.view_window_s, 0.0
    try:
        assert count_after(("result", "bytes=10-"), ("result", "bytes=20-")) == 2  # window over
    finally:
        state.view_window_s = window
    action, detail = records()[0]
    assert (action, detail) == ("view_preview", "preview of the result clip (rgb) sent from byte 0")
    with live.client() as client:
        for _ in range(2):
            client.get(f"{ROUTE}/{body['id']}/faces", headers=live.auth("ivy"))
    assert [a for a, _ in records()].count("read_faces") == 2
    record = [r for r in live.services.audit_log.records(limit=10_000) if r.job_id == body["id"]][
        -1
    ]
    assert (record.actor, record.case_id, record.outcome) == ("ivy", CASE, "granted")


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Play ``src`` in a <video> of the page, seek to ``time``, draw that frame on a canvas and
# return its RGB pixels (base64).
_GRAB_FRAME = """
const [src, time, done] = arguments;
document.querySelectorAll('video').forEach((old) => old.remove());
const video = document.createElement('video');
video.muted = true;
video.preload = 'auto';
const grab = () => {
  video.pause();
  video.onseeked = () => {
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    const context = canvas.getContext('2d', {willReadFrequently: true});
    context.drawImage(video, 0, 0);
    const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let text = '';
    for (let i = 0; i < rgba.length; i += 4) {
      text += String.fromCharCode(rgba[i], rgba[i + 1], rgba[i + 2]);
    }
    done({width: canvas.width, height: canvas.height, rgb: btoa(text)});
  };
  video.currentTime = time;
};
video.onerror = () => done({error: video.error && video.error.code});
video.onloadeddata = grab;
video.src = src;
document.body.appendChild(video);
"""


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver")
def test_chromium_plays_seeks_and_shows_the_previews_colours(live, job, tmp_path):
    from selenium import webdriver

    body, _, _ = job
    exact, _ = _decode(_get(live, body["id"], "result", "rgb").content, tmp_path / "rgb.mp4")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    route = {"route": f"{ROUTE}/{{job_id}}/preview/{{which}}.mp4", "method": "GET"}

    def served(status: str) -> float:
        value = live.services.metrics.registry.get_sample_value(
            "uunet_authority_http_requests_total", {**route, "status": status}
        )
        return value or 0.0

    try:
        driver.set_script_timeout(30)
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": live.auth("ivy")})
        driver.get(f"{live.url}/docs")  # any page of the service's origin
        # yuv420: 4:2:0 chroma at the surrogates' sharp colour edges leaves single pixels up
        # to 64-66 levels off (measured); false colours (Chromium on libx264rgb) are 100+ off
        # over whole regions, and the mean below catches any wrong conversion.
        for variant, worst in (("yuv444", 3), ("yuv420", 80)):
            partial_before = served("206")
            views_before = _views(live, body["id"])
            src = f"{ROUTE}/{body['id']}/preview/result.mp4?variant={variant}"
            shown = driver.execute_async_script(_GRAB_FRAME, src, 9.5 / 15)
            assert "error" not in shown, shown
            rgb = np.frombuffer(base64.b64decode(shown["rgb"]), np.uint8)
            rgb = rgb.reshape(shown["height"], shown["width"], 3)
            error = np.abs(rgb.astype(np.int16) - exact[9])
            assert error.max() <= worst and error.mean() < 3, (variant, error.max(), error.mean())
            assert served("206") > partial_before  # Chromium asked for ranges and got them
            assert _views(live, body["id"]) - views_before == 1  # one view, one record
    finally:
        driver.quit()


def _views(live, job_id: str) -> int:
    return sum(
        1
        for r in live.services.audit_log.records(limit=10_000)
        if r.job_id == job_id and r.action == "view_preview"
    )
