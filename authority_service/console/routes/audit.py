"""The auditor's pages: records with filters, one record, and the hash chain's check.

Each calls ``/v1/audit``'s own function (:mod:`authority_service.api.routes.audit`), so each
read and each check is itself audited as the API audits it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse

from authority_service.api.deps import ServicesDep
from authority_service.api.routes.audit import read_audit, verify_audit
from authority_service.console.deps import console_user
from authority_service.console.render import page
from authority_service.console.security import PREFIX
from authority_service.errors import InvalidRequestError, NotFoundError
from authority_service.users import Role, User

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 50
OUTCOMES = ("granted", "refused", "pending", "completed", "failed")
_MAX_SEQ = 2**62
Text = Annotated[str, Query(max_length=128)]


def _moment(value: str, name: str) -> datetime | None:
    """A ``datetime-local`` field (``YYYY-MM-DDTHH:MM``, UTC) or ``None`` when empty.

    Raises:
        InvalidRequestError: not a date and time.
    """
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequestError(
            f"{name} must be a date and time (YYYY-MM-DD HH:MM, UTC)", field=name
        ) from exc


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    user: Annotated[User, Depends(console_user("read_audit", {Role.auditor}))],
    services: ServicesDep,
    actor: Text = "",
    case_id: Text = "",
    outcome: Text = "",
    since: Text = "",
    until: Text = "",
    after_seq: Annotated[int, Query(ge=0, le=_MAX_SEQ)] = 0,
) -> HTMLResponse:
    """Records oldest first, ``PAGE_SIZE`` a page, filtered by user, case, outcome and time.

    Raises:
        InvalidRequestError: an unknown outcome or a malformed time (422).
    """
    if outcome and outcome not in OUTCOMES:
        raise InvalidRequestError(f"outcome must be one of {', '.join(OUTCOMES)}", field="outcome")
    result = read_audit(
        request,
        user,
        services,
        after_seq=after_seq,
        limit=PAGE_SIZE,
        case_id=case_id or None,
        actor=actor or None,
        outcome=outcome or None,
        since=_moment(since, "since"),
        until=_moment(until, "until"),
    )
    filters = {
        "actor": actor,
        "case_id": case_id,
        "outcome": outcome,
        "since": since,
        "until": until,
    }
    return page(
        request,
        "audit.html",
        records=result.records,
        next_after_seq=result.next_after_seq,
        filters=filters,
        outcomes=OUTCOMES,
    )


@router.get("/audit/verify", response_class=HTMLResponse)
def audit_verify(
    request: Request,
    user: Annotated[User, Depends(console_user("verify_audit", {Role.auditor}))],
    services: ServicesDep,
) -> HTMLResponse:
    """Recompute the chain and compare it with the anchor; the result, problem by problem."""
    return page(request, "audit_verify.html", report=verify_audit(request, user, services))


@router.get("/audit/{seq}", response_class=HTMLResponse)
def audit_entry(
    request: Request,
    seq: Annotated[int, Path(ge=1, le=_MAX_SEQ)],
    user: Annotated[User, Depends(console_user("read_audit", {Role.auditor}))],
    services: ServicesDep,
) -> HTMLResponse:
    """Every field of one record, its hash and its link to the previous one.

    Raises:
        NotFoundError: no record ``seq`` (404).
    """
    result = read_audit(
        request,
        user,
        services,
        after_seq=seq - 1,
        limit=1,
        case_id=None,
        actor=None,
        outcome=None,
        since=None,
        until=None,
    )
    if not result.records or result.records[0].seq != seq:
        raise NotFoundError(f"no audit record {seq}")
    return page(request, "audit_entry.html", record=result.records[0])
