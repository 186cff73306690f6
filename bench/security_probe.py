"""Security probe of the authority: re-measure the figures of the security review.

Usage::

    .venv/bin/python bench/security_probe.py [--flood N] [--threads T] [--attempts N]
        [--out FILE] [--keep]

It starts the REAL service, as ``uunet-authority --config FILE serve`` (a uvicorn server in a
subprocess on 127.0.0.1, secrets in ``$CREDENTIALS_DIRECTORY``, users made with
``uunet-authority user add``), each in a temporary data directory, and prints one JSON report
on standard output (progress goes to standard error through ``logging``):

1. ``bad_tokens``: every route of ``/openapi.json`` (path parameters filled with dummy values)
   with every kind of bad credential (none, another scheme, an empty bearer, garbage, another
   signing key, ``alg: none``, HS512 with the real key, expired, not yet valid, wrong audience
   or issuer, a missing claim, an unknown user, a stale generation, the token of a disabled,
   a re-enabled and a re-passworded user), and on role-gated routes the tokens of the other
   roles and a token claiming the needed role (real key): status codes per kind, and every
   case that was not a 401 (403 for a wrong role). Public routes are reported apart.
2. ``audit_tampering``: on a copy of a data directory (server stopped), each of: delete the last
   record, truncate the tail, edit a record and re-chain the rest, the same plus the anchor
   files rewritten, and the tail truncated with the anchor files removed; then 0, 1 or 5
   legitimate appends through the real server (an admin login, then admin user listings);
   then ``uunet-authority audit verify`` (plain, with ``--anchor`` a pre-tampering copy of the
   journal, and, when plain verify missed it, with ``--expect-head SEQ:HASH``).
3. ``flood``: N requests with a garbage bearer from a few client threads (from 127.0.0.3):
   requests/s served, and the audit records they left after a SIGTERM shutdown (the refusal
   window is flushed then), whose summed :func:`~authority_service.refusals.refusal_count`
   must equal N.
4. ``lockout``: an attacker at 127.0.0.2 sends wrong passwords for a real user (statuses and
   ``Retry-After``), the real user then logs in from 127.0.0.1, an admin unlocks, the attacker's
   address logs in; ``backoff``: the same on a server with a 1 s lockout (cap 4 s), waiting out
   each lockout, to show the doubling.
5. ``body_limits``: chunked and declared over-limit bodies on the login route and the frame
   route, an anonymous over-limit upload, and 1x1 frame/clip uploads.

The settings are the defaults (login limits, refusal window of 60 s) except: argon2id at
time_cost 1, 8 MiB, parallelism 1 (so the run takes about a minute or two on 2 busy cores),
no decoders (no model is needed: every probe is refused before one would run), a 1 MiB frame
and 4 MiB clip limit. The report's ``settings`` says so.

The harness (one real authority per measurement) is :mod:`bench.probe_harness`, its process
:mod:`bench.live_service` (shared with ``bench/authority_soak.py``); probes 1 and 2 are in
:mod:`bench.probe_tokens` and :mod:`bench.probe_audit`, the others here.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from authority_service.media import encode_png  # noqa: E402
from authority_service.refusals import refusal_count  # noqa: E402
from bench.probe_harness import (  # noqa: E402
    ATTACKER_ADDRESS,
    FLOOD_ADDRESS,
    REASON,
    SETUP_ADDRESS,
    Authority,
    Secrets,
)

log = logging.getLogger("security_probe")

from bench.probe_audit import probe_tampering  # noqa: E402
from bench.probe_tokens import probe_bad_tokens  # noqa: E402

# -- 3. flood ---------------------------------------------------------------------------------


def probe_flood(auth: Authority, total: int, threads: int) -> tuple[dict[str, Any], int]:
    """Fire ``total`` garbage-bearer requests; return the figures and the seq before."""
    before = auth.head()[0]
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    share = [total // threads + (i < total % threads) for i in range(threads)]

    def worker(count: int) -> None:
        local: Counter[int] = Counter()
        with auth.client(FLOOD_ADDRESS, headers={"Authorization": "Bearer garbage"}) as client:
            for _ in range(count):
                local[client.get("/v1/me").status_code] += 1
        with lock:
            statuses.update(local)

    pool = [threading.Thread(target=worker, args=(n,)) for n in share]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    during = [r for r in auth.audit_records() if r.seq > before and r.client == FLOOD_ADDRESS]
    return {
        "requests": total,
        "client_threads": threads,
        "route": "GET /v1/me, Authorization: Bearer garbage, from " + FLOOD_ADDRESS,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(total / elapsed, 1),
        "status_counts": dict(statuses),
        "audit_records_before_shutdown": len(during),
    }, before


def flood_after_shutdown(auth: Authority, before: int, total: int) -> dict[str, Any]:
    records = [r for r in auth.audit_records() if r.seq > before and r.client == FLOOD_ADDRESS]
    summed = sum(refusal_count(r) for r in records)
    return {
        "audit_records_after_shutdown": len(records),
        "summed_refusal_count": summed,
        "sum_equals_requests": summed == total,
        "records": [
            {
                "seq": r.seq,
                "action": r.action,
                "outcome": r.outcome,
                "detail": (r.detail or "")[:200],
            }
            for r in records
        ],
    }


# -- 4. lockout -------------------------------------------------------------------------------


def _attempt(client: httpx.Client, user: str, password: str) -> dict[str, Any]:
    response = client.post("/v1/token", data={"username": user, "password": password})
    return {"status": response.status_code, "retry_after": response.headers.get("retry-after")}


def probe_lockout(auth: Authority, admin: str, attempts: int) -> dict[str, Any]:
    right = auth.keys.password("ivy")
    with auth.client(ATTACKER_ADDRESS) as attacker:
        sequence = [_attempt(attacker, "ivy", f"wrong-guess-{i:04d}") for i in range(attempts)]
        attacker_right_while_locked = _attempt(attacker, "ivy", right)
    with auth.client("127.0.0.1") as user:
        real_user = _attempt(user, "ivy", right)
    with auth.client(SETUP_ADDRESS, headers={"Authorization": f"Bearer {admin}"}) as client:
        unlock = client.post("/v1/users/ivy/unlock")
    with auth.client(ATTACKER_ADDRESS) as attacker:
        after_unlock = _attempt(attacker, "ivy", right)
    return {
        "settings": "defaults: 10 token requests/min per address, 5 failures/min per user and "
        "address, lockout 60 s doubling to 3600 s",
        "attacker_address": ATTACKER_ADDRESS,
        "attacker_statuses": [a["status"] for a in sequence],
        "attacker_retry_after": [a["retry_after"] for a in sequence],
        "attacker_right_password_while_locked": attacker_right_while_locked,
        "real_user_from_127.0.0.1": real_user,
        "admin_unlock": {"status": unlock.status_code, "body": unlock.text[:300]},
        "attacker_address_right_password_after_unlock": after_unlock,
    }


def probe_backoff(root: Path, keys: Secrets, lockouts: int = 4) -> dict[str, Any]:
    auth = Authority(
        root / "backoff",
        keys,
        overrides={
            "auth": {
                "login_lockout_s": 1,
                "login_lockout_max_s": 4,
                "login_attempts_per_minute": 1000,
            }
        },
    )
    auth.write_config()
    auth.add_user("ivy", "investigator")
    auth.start()
    waits, statuses = [], []
    started = time.monotonic()
    try:
        with auth.client(ATTACKER_ADDRESS) as attacker:
            while len(waits) < lockouts and time.monotonic() - started < 60:
                result = _attempt(attacker, "ivy", "wrong-guess")
                statuses.append(result["status"])
                if result["status"] == 429:
                    waits.append(int(result["retry_after"]))
                    time.sleep(int(result["retry_after"]) + 0.05)
    finally:
        auth.stop()
    return {
        "settings": "login_lockout_s 1, login_lockout_max_s 4, 5 failures/min per user and address",
        "attacker_statuses": statuses,
        "lockout_retry_after_s": waits,
    }


# -- 5. body limits ---------------------------------------------------------------------------


def _chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"a" * piece


def _multipart_chunks(file_field: str, total: int) -> Iterator[bytes]:
    """A well-formed multipart body (the reason fields, then a file part of ``total`` bytes)
    sent in chunks, so no Content-Length is declared and only counting can refuse it."""
    for name, value in REASON.items():
        yield (
            f'--probe\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    yield (
        f'--probe\r\nContent-Disposition: form-data; name="{file_field}"; filename="big.bin"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield from _chunks(total)
    yield b"\r\n--probe--\r\n"


def _one_by_one_clip(path: Path) -> bytes:
    """A real 3-frame 1x1 FFV1 clip (PyAV's FFV1 with its default options: the edge's lossless
    settings refuse a 1-pixel side)."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 1, 1, "bgr0"
        for _ in range(3):
            picture = av.VideoFrame.from_ndarray(np.zeros((1, 1, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return path.read_bytes()


def probe_body_limits(auth: Authority, investigator: str, root: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}

    def keep(name: str, response: httpx.Response, expected: int) -> None:
        results[name] = {
            "expected": expected,
            "status": response.status_code,
            "body": response.text[:300],
        }

    bearer = {"Authorization": f"Bearer {investigator}"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    multipart_type = {"Content-Type": "multipart/form-data; boundary=probe"}
    with auth.client("127.0.0.1") as client:
        keep(
            "login_chunked_128KiB",
            client.post("/v1/token", content=_chunks(128 << 10), headers=form),
            413,
        )
        keep(
            "login_declared_1MiB",
            client.post("/v1/token", content=b"a" * (1 << 20), headers=form),
            413,
        )
        keep(
            "frame_chunked_2MiB_investigator",
            client.post(
                "/v1/frames:reconstruct",
                content=_multipart_chunks("frame", 2 << 20),
                headers={**bearer, **multipart_type},
            ),
            413,
        )
        keep(
            "frame_chunked_2MiB_anonymous",
            client.post(
                "/v1/frames:reconstruct",
                content=_multipart_chunks("frame", 2 << 20),
                headers=multipart_type,
            ),
            401,
        )
        keep(
            "clip_chunked_8MiB_investigator",
            client.post(
                "/v1/reconstructions",
                content=_multipart_chunks("clip", 8 << 20),
                headers={**bearer, **multipart_type},
            ),
            413,
        )
        keep(
            "clip_chunked_8MiB_anonymous",
            client.post(
                "/v1/reconstructions",
                content=_multipart_chunks("clip", 8 << 20),
                headers=multipart_type,
            ),
            401,
        )
        png = encode_png(np.zeros((1, 1, 3), np.uint8))
        keep(
            "frame_1x1_png",
            client.post(
                "/v1/frames:reconstruct",
                headers=bearer,
                data=REASON,
                files={"frame": ("f.png", png, "image/png")},
            ),
            422,
        )
        clip = _one_by_one_clip(root / "1x1.mkv")
        keep(
            "clip_1x1_ffv1",
            client.post(
                "/v1/reconstructions",
                headers=bearer,
                data=REASON,
                files={"clip": ("c.mkv", clip, "video/x-matroska")},
            ),
            422,
        )
    return {
        "limits": "non-upload routes 64 KiB; max_frame_bytes 1 MiB; max_clip_bytes 4 MiB",
        "cases": results,
    }


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=1000, help="requests of the flood")
    parser.add_argument("--threads", type=int, default=4, help="client threads of the flood")
    parser.add_argument("--attempts", type=int, default=12, help="attacker's wrong passwords")
    parser.add_argument("--appends", default="0,1,5", help="legit appends after tampering")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="uunet-security-probe-"))
    report: dict[str, Any] = {
        "settings": {
            "argon2": "time_cost 1, memory 8 MiB, parallelism 1 (deployed default: 3, 64 MiB, 4)",
            "login_limits": "defaults (10 token requests/min per address, 5 failures/min per user "
            "and address, lockout 60 s doubling to 3600 s)",
            "audit_refusal_window_s": "60 (default)",
            "models": "none (shipped_default false, empty models_dir)",
            "limits": "max_frame_bytes 1 MiB, max_clip_bytes 4 MiB (deployed: 32 MiB, 512 MiB)",
            "server": "uunet-authority --config FILE serve (subprocess), secrets in "
            "$CREDENTIALS_DIRECTORY, users by `uunet-authority user add`",
        }
    }
    keys = Secrets(root / "credentials")
    keys.write()
    try:
        main_auth = Authority(root / "main", keys)
        main_auth.write_config()
        for name, role in (
            ("adam", "admin"),
            ("audrey", "auditor"),
            ("ivy", "investigator"),
            ("april", "approver"),
        ):
            main_auth.add_user(name, role)
        report["server_start_s"] = round(main_auth.start(), 2)
        admin = main_auth.login("adam")
        investigator = main_auth.login("ivy")
        try:
            log.info("1. bad tokens")
            report["bad_tokens"] = probe_bad_tokens(main_auth, admin)
            log.info("4. lockout")
            report["lockout"] = probe_lockout(main_auth, admin, args.attempts)
            log.info("5. body limits")
            report["body_limits"] = probe_body_limits(main_auth, investigator, root)
            log.info("3. flood of %d requests", args.flood)
            flood, before = probe_flood(main_auth, args.flood, args.threads)
        finally:
            report["main_server_stop"] = main_auth.stop()
        flood.update(flood_after_shutdown(main_auth, before, args.flood))
        report["flood"] = flood
        report["main_audit_verify_at_end"] = main_auth.verify()
        anchor_errors = [
            line for line in main_auth.log_tail(100000).splitlines() if "ERROR" in line
        ]
        report["main_server_error_lines"] = anchor_errors[:20]
        log.info("4b. lockout back-off")
        report["backoff"] = probe_backoff(root, keys)
        log.info("2. audit tampering")
        appends = tuple(int(n) for n in args.appends.split(","))
        report["audit_tampering"] = probe_tampering(root, keys, appends)
    finally:
        if args.keep:
            log.info("kept %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    report["wall_s"] = round(time.monotonic() - started, 1)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
