# ruff: noqa: T201 - a command line prints its output
"""``uunet-authority``: run the service, manage users, verify the audit log, reverse a clip.

::

    uunet-authority [--config FILE] serve
    uunet-authority [--config FILE] worker [--concurrency N]
    uunet-authority [--config FILE] validate-config
    uunet-authority [--config FILE] user add NAME --role ROLE [--password-env VAR]
    uunet-authority [--config FILE] user list | set-role NAME ROLE | disable NAME | enable NAME
    uunet-authority [--config FILE] user passwd NAME [--password-env VAR]
    uunet-authority [--config FILE] audit verify [--anchor COPY]... [--expect-head SEQ:HASH]...
    uunet-authority [--config FILE] audit reanchor
    uunet-authority [--config FILE] reconstruct CLIP --out OUT --case-id ID \\
        --justification TEXT [--model DIR] [--private-key FILE]... [--workers N]
    uunet-authority keys generate --out DIR

Passwords never come from the command line: from the environment variable named by
``--password-env``, else typed twice on a terminal, else the first line of standard input.
``user`` and ``reconstruct`` are audited under the operating-system user (``os:<login>``, role
``operator``; through sudo, ``os:<caller> (as <login>)``).

``worker`` runs the jobs the API enqueues with ``jobs.queue: celery`` (:mod:`.worker`); it
needs the camera keys and sealing keys (not the JWT key), the database and the data directory.

``keys generate`` writes a new sealing key pair (``DIR/authority.key``, mode 0600, and
``DIR/authority.pub``, for the cameras) and never overwrites one; it needs no configuration.
``reconstruct --private-key`` adds sealing keys to those of ``sealing.private_keys``.

Exit codes: 0 success; 1 the operation was refused or found a problem (audit chain broken,
clip refused); 2 bad configuration, arguments or secrets.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from authority_service.audit import AnchorExistsError, AuditEntry, parse_head, read_heads
from authority_service.config import (
    AuthoritySettings,
    ServerSettings,
    WeakSecretError,
    load_authority_settings,
    load_camera_keys,
    load_sealing_keys,
    load_secrets,
)
from authority_service.db import DatabaseError
from authority_service.errors import AuthorityError, ClipError
from authority_service.parallel import reconstruct_clip
from authority_service.reconstruction import RESULT_SUFFIX
from authority_service.service import Services, build_services
from authority_service.users import Role
from shared.config_base import ConfigError, SecretNotFoundError
from shared.log_safety import configure_logging, escape_control
from shared.model_dir import ModelDirError
from shared.onnx_runner import ModelLoadError, ModelSignatureError, ProviderError
from shared.sealing_keys import (
    SealingKeyError,
    SealingPrivateKey,
    generate_key_pair,
    load_private_key,
)

__all__ = ["main", "uvicorn_options"]

log = logging.getLogger("authority_service")

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def _error(text: str) -> None:
    """Print an error on standard error as one line (a file name may hold a newline)."""
    print(escape_control(text), file=sys.stderr)


class UsageError(Exception):
    """Bad arguments or input on the command line (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """No abbreviated options (``--password`` must not mean ``--password-env``); sub-parsers
    are built from this class too."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="uunet-authority",
        description="Authenticated, audited reversal of de-identified video (uunet).",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="YAML settings file (default: $UUNET_AUTHORITY_CONFIG; the environment overrides)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service")
    commands.add_parser("validate-config", help="check the settings and secrets, then exit")
    worker = commands.add_parser(
        "worker", help="run the jobs the API enqueues (jobs.queue: celery)"
    )
    worker.add_argument(
        "--concurrency",
        metavar="N",
        type=int,
        default=1,
        help="pool processes, each running one job at a time (default 1)",
    )

    user = commands.add_parser("user", help="manage local users").add_subparsers(
        dest="user_command", required=True
    )
    add = user.add_parser("add", help="create a user (password from env or stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")
    user.add_parser("list", help="list users")
    set_role = user.add_parser("set-role", help="change a user's role (revokes its tokens)")
    set_role.add_argument("name")
    set_role.add_argument("role", choices=[r.value for r in Role])
    for name, text in (("disable", "disable a user"), ("enable", "enable a user")):
        user.add_parser(name, help=text).add_argument("name")
    passwd = user.add_parser("passwd", help="set a new password (revokes its tokens)")
    passwd.add_argument("name")
    passwd.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")

    audit = commands.add_parser("audit", help="audit log").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser(
        "verify",
        help="check the hash chain and its anchor; exit 1 if it is broken",
        description=(
            "Recompute every record's hash and link, and check that the chain still contains "
            "the anchored head (audit-head.json) and every head journaled in "
            "audit-head.journal.jsonl, both in the data directory. Someone who can rewrite "
            "the database can rewrite those files too: keep a copy of the head off this host "
            "(ship the journal file, or note head_seq:head_hash of GET /v1/audit/verify) and "
            "pass it with --anchor or --expect-head; a rewritten history then no longer "
            "contains it."
        ),
    )
    verify.add_argument(
        "--anchor",
        metavar="COPY",
        type=Path,
        action="append",
        default=[],
        help="a copy, kept off this host, of audit-head.json or audit-head.journal.jsonl: "
        "each head in it must still be in the chain (repeatable)",
    )
    verify.add_argument(
        "--expect-head",
        metavar="SEQ:HASH",
        action="append",
        default=[],
        help="a head recorded off this host (record number and hash): the chain must still "
        "hold that record with that hash (repeatable)",
    )

    audit.add_parser(
        "reanchor",
        help="anchor the current head afresh (after a break was investigated; audited)",
        description=(
            "Move audit-head.json and audit-head.journal.jsonl aside first (keep them as "
            "evidence). The current head is anchored only if the whole chain checks out from "
            "its first record; the re-anchoring is then recorded in the log."
        ),
    )
    rec = commands.add_parser("reconstruct", help="reverse a clip on this server (audited)")
    rec.add_argument("clip", type=Path)
    rec.add_argument("--out", type=Path, required=True, help="output clip: .mkv (FFV1) or .mp4")
    rec.add_argument("--case-id", required=True)
    rec.add_argument("--justification", required=True)
    rec.add_argument(
        "--model", type=Path, help="decoder for paper-format messages (default: configured)"
    )
    rec.add_argument(
        "--workers",
        metavar="N",
        type=int,
        help="worker processes reversing the clip's segments side by side, into the result "
        "one pass gives (default: jobs.segment_workers; 1: one pass)",
    )
    rec.add_argument(
        "--private-key",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="a sealing private key (authority.key) beside those of sealing.private_keys: "
        "opens the faces cameras sealed to it (repeatable)",
    )

    keys = commands.add_parser("keys", help="sealing keys").add_subparsers(
        dest="keys_command", required=True
    )
    generate = keys.add_parser(
        "generate",
        help="write a new sealing key pair (never overwrites one)",
        description="Write DIR/authority.key (the private key, mode 0600: give it to this "
        "service as a credential, see sealing.private_keys) and DIR/authority.pub (give it to "
        "the cameras). Prints the key id.",
    )
    generate.add_argument("--out", type=Path, required=True, metavar="DIR")
    return parser


def _read_password(env_var: str | None) -> str:
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


def _os_actor() -> str:
    """``os:<login>`` of whoever runs the command: the sudo caller when run through sudo (or
    ``systemd-run --setenv=SUDO_USER=...``), else the process's own user."""
    login = getpass.getuser()
    caller = os.environ.get("SUDO_USER")
    return f"os:{caller} (as {login})" if caller and caller != login else f"os:{login}"


def _user_command(args: argparse.Namespace, services: Services) -> int:
    users, actor = services.users, _os_actor()
    command = args.user_command
    if command == "list":
        for user in users.list():
            state = "disabled" if user.disabled else "active"
            print(f"{user.name}\t{user.role.value}\t{state}\t{user.created_at}")
        return EXIT_OK
    if command == "add":
        password_hash = services.passwords.hash(_read_password(args.password_env))
        user = users.add(args.name, Role(args.role), password_hash)
        detail = f"user {user.name} added as {user.role.value}"
    elif command == "passwd":
        password_hash = services.passwords.hash(_read_password(args.password_env))
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


def _audit_verify(args: argparse.Namespace, services: Services) -> int:
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


def _audit_reanchor(services: Services, actor: str) -> int:
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


def _reconstruct(args: argparse.Namespace, services: Services) -> int:
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
        actor=_os_actor(),
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
        _error(f"refused ({exc.code}): {exc.detail}")
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


def _keys_generate(out: Path) -> int:
    try:
        private, public = generate_key_pair(out)
    except SealingKeyError as exc:
        _error(f"uunet-authority: {exc}")
        return EXIT_REFUSED
    print(f"key id {load_private_key(private).key_id}")
    print(f"private key {private} (mode 0600): give it to the authority as a credential")
    print(f"public key {public}: give it to the cameras")
    return EXIT_OK


def _sealing_keys(
    settings: AuthoritySettings, files: Sequence[Path]
) -> dict[str, SealingPrivateKey]:
    """The configured sealing keys and those of ``--private-key`` (key id -> key).

    Raises:
        SecretNotFoundError / SealingKeyError: a key is missing or not a sealing private key.
    """
    keys = load_sealing_keys(settings)
    for path in files:
        key = load_private_key(path)
        log.info("sealing key %s loaded (%s)", key.key_id, path)
        keys[key.key_id] = key
    return keys


def uvicorn_options(server: ServerSettings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run``/``uvicorn.Config`` for ``serve``.

    ``X-Forwarded-For``/``-Proto`` are honoured only from ``server.forwarded_allow_ips``; when
    that is empty (the default) proxy headers are off, whatever ``$FORWARDED_ALLOW_IPS`` says.
    """
    trusted = server.forwarded_allow_ips.strip()
    return {
        "host": server.host,
        "port": server.port,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "log_config": None,
        "access_log": True,
    }


def _serve(settings: AuthoritySettings) -> int:
    import uvicorn

    from authority_service.api.app import create_app

    secrets = load_secrets(settings)
    app = create_app(settings, secrets)
    uvicorn.run(app, **uvicorn_options(settings.server))
    return EXIT_OK


def _worker(settings: AuthoritySettings, concurrency: int) -> int:
    from authority_service.worker import run_worker

    if settings.jobs.queue != "celery":
        raise UsageError("jobs.queue is local: the service runs its jobs itself (set celery)")
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    return run_worker(
        settings, load_camera_keys(settings), load_sealing_keys(settings), concurrency
    )


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "keys":
        try:
            return _keys_generate(args.out)
        except OSError as exc:
            _error(f"uunet-authority: cannot write the key pair: {exc.strerror or exc}")
            return EXIT_USAGE
    try:
        settings = load_authority_settings(args.config)
        configure_logging(settings.log_level)  # one escaped line per record
        if args.command == "serve":
            return _serve(settings)
        if args.command == "worker":
            return _worker(settings, args.concurrency)
        if args.command == "validate-config":
            load_secrets(settings)
            services = build_services(settings)
            try:
                services.decoders.load_all()
            finally:
                services.close()
            print(f"configuration valid: data in {settings.data_dir}")
            return EXIT_OK
        reconstructing = args.command == "reconstruct"
        services = build_services(
            settings,
            # The camera keys verify the messages: a local reversal checks them like the API.
            camera_keys=load_camera_keys(settings) if reconstructing else None,
            sealing_keys=_sealing_keys(settings, args.private_key) if reconstructing else None,
            model_override=args.model if reconstructing else None,
        )
        try:
            if args.command == "user":
                return _user_command(args, services)
            if args.command == "audit" and args.audit_command == "reanchor":
                return _audit_reanchor(services, _os_actor())
            if args.command == "audit":
                return _audit_verify(args, services)
            return _reconstruct(args, services)
        finally:
            services.close()
    except (
        ConfigError,
        SecretNotFoundError,
        WeakSecretError,
        ModelDirError,
        ModelLoadError,
        ModelSignatureError,
        ProviderError,
        DatabaseError,
        SealingKeyError,
    ) as exc:
        _error(f"uunet-authority: {exc}")
        return EXIT_USAGE
    except UsageError as exc:
        _error(f"uunet-authority: {exc}")
        return EXIT_USAGE
    except AuthorityError as exc:
        _error(f"uunet-authority: {exc.code}: {exc.detail}")
        return EXIT_REFUSED


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
