"""The case id and justification every reversal must carry."""

from __future__ import annotations

import re
from typing import Any

from authority_service.api.errors import Attempt
from authority_service.api.schemas import CASE_ID_MAX, JUSTIFICATION_MAX, JUSTIFICATION_MIN
from authority_service.errors import InvalidRequestError

__all__ = ["REASON_FIELDS", "REASON_SCHEMA", "take_reason"]

REASON_FIELDS = ("case_id", "justification")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

#: OpenAPI properties of the two fields, for the multipart request bodies.
REASON_SCHEMA: dict[str, dict[str, Any]] = {
    "case_id": {
        "type": "string",
        "minLength": 1,
        "maxLength": CASE_ID_MAX,
        "description": "The case this reversal serves (your organisation's reference).",
    },
    "justification": {
        "type": "string",
        "minLength": JUSTIFICATION_MIN,
        "maxLength": JUSTIFICATION_MAX,
        "description": "Why the original faces are needed; stored in the audit log.",
    },
}


def take_reason(attempt: Attempt, fields: dict[str, str]) -> tuple[str, str]:
    """Copy the case id and justification into ``attempt``, then check them.

    They are recorded (cut to their maximum length) even when refused, so the audit log shows
    what was asked.

    Raises:
        InvalidRequestError: too long or short, or containing control characters.
    """
    case_id, justification = fields["case_id"], fields["justification"]
    attempt.case_id = case_id[:CASE_ID_MAX]
    attempt.justification = justification[:JUSTIFICATION_MAX]
    if len(case_id) > CASE_ID_MAX or _CONTROL.search(case_id) or "\n" in case_id:
        raise InvalidRequestError(
            f"case_id must be 1-{CASE_ID_MAX} characters without control characters",
            field="case_id",
        )
    if not JUSTIFICATION_MIN <= len(justification) <= JUSTIFICATION_MAX or _CONTROL.search(
        justification
    ):
        raise InvalidRequestError(
            f"justification must be {JUSTIFICATION_MIN}-{JUSTIFICATION_MAX} characters (a "
            "sentence saying why), without control characters",
            field="justification",
        )
    return case_id, justification
