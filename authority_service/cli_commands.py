# ruff: noqa: T201 - a command line prints its output
"""The bodies of ``uunet-authority``'s administrative commands (:mod:`authority_service.cli`
parses the arguments and maps errors to exit codes): ``user``, ``audit verify|reanchor``, a
local ``reconstruct`` (audited under the operating-system user) and ``keys generate``."""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from authority_service.audit import AnchorExistsError, AuditEntry, parse_head, read_heads
from authority_service.errors import ClipError
from authority_service.parallel import reconstruct_clip
from authority_service.reconstruction import RESULT_SUFFIX
from authority_service.service import Services
from authority_service.users import Role
from shared.log_safety import escape_control
from shared.sealing_keys import SealingKeyError, generate_key_pair, load_private_key

__all__ = [
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "UsageError",
    "audit_reanchor",
    "audit_verify",
    "error",
    "keys_generate",
    "os_actor",
    "reconstruct",
    "user_command",
]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def error(text: str) -> None:
    """Print an error on standard error as one line (a file name may hold a newline)."""
    print(escape_control(text), file=sys.stderr)


class UsageError(Exception):
    """Bad arguments or input on the command line (exit code 2)."""


def read_password(env_var: str | None) -> str:
    if env_var:
        value = os.environ.get(env_var)
        if not value:
            raise UsageError(f"${env_var} is not set or empty")
        return value
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise UsageError("the two passwords differ")
        return first
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise UsageError("no password on standard input")
    return line


def os_actor() -> str:
    """``os:<login>`` of whoever runs the command: the sudo caller when run through sudo (or
    ``systemd-run --setenv=SUDO_USER=...``), else the process's own user."""
    login = getpass.getuser()
    caller = os.environ.get("SUDO_USER")
    return f"os:{caller} (as {login})" if caller and caller != login else f"os:{login}"


def user_command(args: argparse.Namespace, services: Services) -> int:
    users, actor = services.users, os_actor()
    command = args.user_command
    if command == "list":
        for user in users.list():
            state = "disabled" if user.disabled else "active"
            print(f"{user.name}\t{user.role.value}\t{state}\t{user.created_at}")
        return EXIT_OK
    if command == "add":
        password_hash = services.passwords.hash(read_password(args.password_env))
        user = users.add(args.name, Role(args.role), password_hash)
        detail = f"user {user.name} added as {user.role.value}"
    elif command == "passwd":
        password_hash = services.passwords.hash(read_password(args.password_env))
        user = users.update(args.name, password_hash=password_hash)
        detail = f"user {user.name}: password changed"
    elif command == "set-role":
        user = users.update(args.name, role=Role(args.role))
        detail = f"user {user.name}: role {user.role.value}"
    else:
        user = users.update(args.name, disabled=command == "disable")
        detail = f"user {user.name}: {command}d"
    services.record(
        AuditEntry(
            actor=actor, role="operator", action=f"user_{command}", outcome="granted", detail=detail
        )
    )
    print(detail)
    return EXIT_OK


def audit_verify(args: argparse.Namespace, services: Services) -> int:
    try:
        expected = [parse_head(text) for text in args.expect_head]
        for path in args.anchor:
            expected.extend(read_heads(path))
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    report = services.audit_log.verify(expected_heads=expected)
    print(
        f"{report.records} records, head #{report.head_seq} {report.head_hash}, "
        f"{'no anchor' if report.anchor_seq is None else f'anchor #{report.anchor_seq}'}, "
        f"{report.heads_checked} journaled or expected heads checked"
    )
    for problem in report.problems:
        print(f"  record {problem.seq}: {problem.problem}")
    print("audit chain valid" if report.valid else "AUDIT CHAIN BROKEN")
    return EXIT_OK if report.valid else EXIT_REFUSED


def audit_reanchor(services: Services, actor: str) -> int:
    try:
        report = services.audit_log.reanchor()
    except AnchorExistsError as exc:
        raise UsageError(str(exc)) from exc
    if not report.valid:
        for problem in report.problems:
            print(f"  record {problem.seq}: {problem.problem}")
        print("AUDIT CHAIN BROKEN: not re-anchored" if report.records else "no records")
        return EXIT_REFUSED
    services.record(
        AuditEntry(
            actor=actor,
            role="operator",
            action="audit_reanchor",
            outcome="granted",
            detail=f"re-anchored at #{report.head_seq} {report.head_hash}",
        )
    )
    print(f"re-anchored at #{report.head_seq} {report.head_hash}")
    return EXIT_OK


def reconstruct(args: argparse.Namespace, services: Services) -> int:
    codec = next((c for c, suffix in RESULT_SUFFIX.items() if args.out.suffix == suffix), None)
    if codec is None:
        raise UsageError(f"--out must end in {' or '.join(RESULT_SUFFIX.values())}")
    if not args.case_id.strip() or len(args.justification.strip()) < 10:
        raise UsageError("--case-id must not be empty; --justification needs a sentence")
    if not args.clip.is_file():
        raise UsageError(f"clip not found: {args.clip}")
    workers = services.settings.jobs.segment_workers if args.workers is None else args.workers
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    digest = hashlib.sha256()
    with open(args.clip, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    base = AuditEntry(
        actor=os_actor(),
        role="operator",
        action="reconstruct_clip_cli",
        outcome="granted",
        case_id=args.case_id,
        justification=args.justification,
        clip_sha256=digest.hexdigest(),
        detail=f"{args.clip} -> {args.out}",
    )
    services.record(base)  # before any face is reversed: no audit, no reversal
    partial = args.out.with_name(f".{args.out.stem}.partial{args.out.suffix}")
    try:
        report = reconstruct_clip(
            services.reconstructor,
            args.clip,
            partial,
            workers=workers,
            segment_frames=services.settings.jobs.segment_frames,
            codec=codec,
        )
    except ValueError as exc:  # H.264 RGB asked for an odd-sized clip
        services.record(AuditEntry(**{**asdict(base), "outcome": "refused", "detail": str(exc)}))
        raise UsageError(str(exc)) from exc
    except ClipError as exc:
        services.record(
            AuditEntry(**{**asdict(base), "outcome": "refused", "detail": f"{exc.code}: {exc}"})
        )
        error(f"refused ({exc.code}): {exc.detail}")
        return EXIT_REFUSED
    partial.replace(args.out)
    services.record(
        AuditEntry(
            **{
                **asdict(base),
                "outcome": "completed",
                "model_ids": ",".join(report.model_ids),
                "frames": report.frames,
                "detail": (
                    f"{report.frames} frames, {report.faces} faces, {report.unverified_frames} "
                    f"unverified (messages from {report.message_source}); "
                    f"{report.faces_by_method.detail()} -> {args.out}"
                ),
            }
        )
    )
    print(json.dumps(asdict(report), indent=2))
    return EXIT_OK


def keys_generate(out: Path) -> int:
    try:
        private, public = generate_key_pair(out)
    except SealingKeyError as exc:
        error(f"uunet-authority: {exc}")
        return EXIT_REFUSED
    print(f"key id {load_private_key(private).key_id}")
    print(f"private key {private} (mode 0600): give it to the authority as a credential")
    print(f"public key {public}: give it to the cameras")
    return EXIT_OK
