"""The records of the audit log and how each one is hashed into the chain.

Every record holds the SHA-256 of the previous record (``prev_hash``; :data:`GENESIS_HASH` for
the first) and its own ``hash``: SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8)
of all its fields except ``hash``, ``prev_hash`` included (:func:`record_hash`).
:mod:`authority_service.audit` appends, anchors and verifies them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "FIELDS",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditProblem",
    "AuditRecord",
    "VerifyReport",
    "record_hash",
]

GENESIS_HASH = "0" * 64
FIELDS = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "outcome",
    "case_id",
    "justification",
    "clip_sha256",
    "model_ids",
    "frames",
    "job_id",
    "client",
    "detail",
    "prev_hash",
)


@dataclass(frozen=True)
class AuditEntry:
    """What a caller records: who did what, why, on which clip, and how it ended."""

    actor: str
    action: str
    outcome: str
    role: str | None = None
    case_id: str | None = None
    justification: str | None = None
    clip_sha256: str | None = None
    model_ids: str | None = None
    frames: int | None = None
    job_id: str | None = None
    client: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class AuditRecord(AuditEntry):
    """A stored entry with its place in the chain."""

    seq: int = 0
    at: str = ""
    prev_hash: str = GENESIS_HASH
    hash: str = ""


@dataclass(frozen=True)
class AuditProblem:
    """One place where the chain is broken."""

    seq: int
    problem: str


@dataclass(frozen=True)
class VerifyReport:
    """Result of :meth:`AuditLog.verify`."""

    valid: bool
    records: int
    head_seq: int
    head_hash: str
    anchor_seq: int | None
    problems: list[AuditProblem] = field(default_factory=list)
    #: Heads checked beyond the head file: journaled ones, then those given to ``verify``.
    heads_checked: int = 0


def record_hash(values: Mapping[str, object]) -> str:
    """SHA-256 (hex) of the canonical JSON of a record's fields (all but ``hash``)."""
    canonical = {name: values.get(name) for name in FIELDS}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
