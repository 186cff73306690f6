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
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from authority_service.cli_commands import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    UsageError,
    audit_reanchor,
    audit_verify,
    error,
    keys_generate,
    os_actor,
    reconstruct,
    user_command,
)
from authority_service.clip_store import ClipStoreError
from authority_service.config import AuthoritySettings, ServerSettings, load_authority_settings
from authority_service.credentials import (
    WeakSecretError,
    load_camera_keys,
    load_sealing_keys,
    load_secrets,
)
from authority_service.db import DatabaseError
from authority_service.errors import AuthorityError
from authority_service.service import build_services
from authority_service.users import Role
from shared.config_base import ConfigError, SecretNotFoundError
from shared.log_safety import configure_logging
from shared.model_dir import ModelDirError
from shared.onnx_runner import ModelLoadError, ModelSignatureError, ProviderError
from shared.sealing_keys import (
    SealingKeyError,
    SealingPrivateKey,
    load_private_key,
)

__all__ = ["main", "uvicorn_options"]

log = logging.getLogger("authority_service")


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
            return keys_generate(args.out)
        except OSError as exc:
            error(f"uunet-authority: cannot write the key pair: {exc.strerror or exc}")
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
                services.jobs.clips.check()  # the bucket exists and the credentials work
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
                return user_command(args, services)
            if args.command == "audit" and args.audit_command == "reanchor":
                return audit_reanchor(services, os_actor())
            if args.command == "audit":
                return audit_verify(args, services)
            return reconstruct(args, services)
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
        ClipStoreError,  # before AuthorityError: str() names the bucket and endpoint
    ) as exc:
        error(f"uunet-authority: {exc}")
        return EXIT_USAGE
    except UsageError as exc:
        error(f"uunet-authority: {exc}")
        return EXIT_USAGE
    except AuthorityError as exc:
        error(f"uunet-authority: {exc.code}: {exc.detail}")
        return EXIT_REFUSED


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
