"""``/v1/audit``: read the audit log and check its hash chain (auditors only)."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BeforeValidator

from authority_service.api.deps import ServicesDep, authorize, current_attempt
from authority_service.api.schemas import (
    AuditPage,
    AuditProblemOut,
    AuditRecordOut,
    AuditVerifyOut,
    ErrorOut,
)
from authority_service.users import Role, User

_ISO_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:\d{2})?"
)


def _iso_date_time(value: object) -> object:
    """Only an ISO 8601 date-time (the schema's ``format: date-time``): pydantic alone would
    also take a bare number as a Unix time."""
    if isinstance(value, str) and not _ISO_DATE_TIME.fullmatch(value):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-12-01T09:30:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_date_time)]


router = APIRouter(prefix="/v1/audit", tags=["audit"])

_ERRORS = {
    401: {"model": ErrorOut, "description": "No token, or a bad one."},
    403: {"model": ErrorOut, "description": "Only auditors read the audit log."},
}
_MAX_SEQ = 2**62


@router.get("", response_model=AuditPage, responses=_ERRORS, summary="Read audit records")
def read_audit(
    request: Request,
    user: Annotated[User, Depends(authorize("read_audit", {Role.auditor}))],
    services: ServicesDep,
    after_seq: Annotated[int, Query(ge=0, le=_MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    case_id: Annotated[str | None, Query(max_length=128)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[IsoDateTime | None, Query(description="At or after (UTC if naive).")] = None,
    until: Annotated[IsoDateTime | None, Query(description="Before (UTC if naive).")] = None,
) -> AuditPage:
    """Records with ``seq > after_seq``, oldest first, optionally for one case, actor or
    outcome (``granted``, ``refused``, ``pending``, ``completed``, ``failed``) and a time
    range. The read itself is audited."""
    records = services.audit_log.records(
        after_seq=after_seq,
        limit=limit,
        case_id=case_id,
        actor=actor,
        outcome=outcome,
        since=since,
        until=until,
    )
    attempt = current_attempt(request)
    attempt.case_id = case_id
    services.record(
        attempt.entry("granted", f"{len(records)} records after {after_seq}, actor {actor}")
    )
    attempt.recorded = True
    return AuditPage(
        records=[AuditRecordOut(**asdict(r)) for r in records],
        next_after_seq=records[-1].seq if len(records) == limit else None,
    )


@router.get(
    "/verify", response_model=AuditVerifyOut, responses=_ERRORS, summary="Check the hash chain"
)
def verify_audit(
    request: Request,
    user: Annotated[User, Depends(authorize("verify_audit", {Role.auditor}))],
    services: ServicesDep,
) -> AuditVerifyOut:
    """Recompute every record's hash and link, and compare the head with the anchor file.
    ``valid`` is false and ``problems`` lists each break when a record was edited, deleted,
    inserted or the tail truncated."""
    report = services.audit_log.verify()
    services.metrics.audit_chain_valid.set(1 if report.valid else 0)
    attempt = current_attempt(request)
    services.record(
        attempt.entry(
            "granted",
            f"chain {'valid' if report.valid else 'BROKEN'}: {report.records} records, "
            f"{len(report.problems)} problems",
        )
    )
    attempt.recorded = True
    return AuditVerifyOut(
        valid=report.valid,
        records=report.records,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        anchor_seq=report.anchor_seq,
        problems=[AuditProblemOut(seq=p.seq, problem=p.problem) for p in report.problems],
    )
