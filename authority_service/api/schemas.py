"""Request and response bodies of the HTTP API (separate models per direction)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from authority_service.users import PASSWORD_MAX, USER_NAME_PATTERN, Role, User

__all__ = [
    "AuditPage",
    "AuditProblemOut",
    "AuditRecordOut",
    "AuditVerifyOut",
    "ClipReportOut",
    "ErrorOut",
    "HealthOut",
    "JobErrorOut",
    "JobOut",
    "JobProgressOut",
    "TokenOut",
    "UserCreate",
    "UserOut",
    "UserUpdate",
    "apply_password_rule",
]

CASE_ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,128}$"
CASE_ID_MAX = 128
JUSTIFICATION_MIN = 10
JUSTIFICATION_MAX = 2000
_PASSWORD_DESCRIPTION = (
    "At least `auth.min_password_length` characters (this schema's `minLength` is the "
    f"running service's setting), at most {PASSWORD_MAX}."
)


class ErrorOut(BaseModel):
    """Every error response: a stable code, a sentence, and facts that help (frame, field)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="Stable machine-readable code, e.g. `forged_message`.")
    detail: str = Field(description="What is wrong, for a human.")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    role: Role


class UserOut(BaseModel):
    name: str
    role: Role
    disabled: bool
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            name=user.name,
            role=user.role,
            disabled=user.disabled,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=USER_NAME_PATTERN)
    role: Role
    #: Its minimum is the service's (:func:`apply_password_rule`), checked by its password policy.
    password: str = Field(max_length=PASSWORD_MAX, description=_PASSWORD_DESCRIPTION)


class UserUpdate(BaseModel):
    """Fields to change; a new role or password, or disabling, revokes the user's tokens."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    password: str | None = Field(None, max_length=PASSWORD_MAX, description=_PASSWORD_DESCRIPTION)
    disabled: bool | None = None


def apply_password_rule(openapi: dict[str, Any], min_length: int) -> None:
    """Write the service's minimum password length (``auth.min_password_length``, the one
    :class:`~authority_service.users.PasswordPolicy` enforces) into an OpenAPI document's
    ``UserCreate`` and ``UserUpdate`` schemas, in place: the schema promises what the service
    accepts. The request models leave the minimum to the policy, which refuses a shorter password
    with ``invalid_request`` naming ``password``.

    Raises:
        KeyError: the document has no such schemas (they are renamed or gone).
    """
    schemas = openapi["components"]["schemas"]
    for name in ("UserCreate", "UserUpdate"):
        prop = schemas[name]["properties"]["password"]
        for variant in prop.get("anyOf", [prop]):
            if variant.get("type") == "string":
                variant["minLength"] = min_length


class ClipReportOut(BaseModel):
    """What a finished reconstruction did."""

    frames: int
    frames_reconstructed: int = Field(description="Frames with a message and at least one face.")
    frames_with_message: int
    frames_without_message: int = Field(description="Passed through unchanged.")
    faces: int
    verified_frames: int = Field(description="v1 messages whose tag was checked with the key.")
    unverified_frames: int = Field(
        description="Paper-format, a camera without a known key, or read from SEI (lossy); "
        "non-zero only when `messages.require_authentication` is false."
    )
    message_source: str = Field(
        "",
        description="Where the messages were read: 'lsb' (lossless pixels, verifiable), 'sei' "
        "(a lossy stream's H.264 SEI units, never verified, approximate reconstruction).",
    )
    model_ids: list[str]
    camera_ids: list[str]
    message_versions: list[str]
    width: int
    height: int
    fps: float
    source_codec: str
    result_codec: str
    seconds: float


class JobProgressOut(BaseModel):
    frames_done: int
    frames_total: int | None = Field(description="From the container; null when it says not.")


class JobErrorOut(BaseModel):
    error: str
    detail: str


class JobOut(BaseModel):
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "expired"]
    case_id: str
    clip_sha256: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    expires_at: str
    progress: JobProgressOut
    report: ClipReportOut | None
    error: JobErrorOut | None
    result_url: str | None = Field(description="Where to fetch the clip once it succeeded.")


class AuditRecordOut(BaseModel):
    seq: int
    at: str
    actor: str
    role: str | None
    action: str
    outcome: str
    case_id: str | None
    justification: str | None
    clip_sha256: str | None
    model_ids: str | None
    frames: int | None
    job_id: str | None
    client: str | None
    detail: str | None
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    records: list[AuditRecordOut]
    next_after_seq: int | None = Field(
        description="Pass as `after_seq` for the next page; null on the last page."
    )


class AuditProblemOut(BaseModel):
    seq: int
    problem: str


class AuditVerifyOut(BaseModel):
    valid: bool
    records: int
    head_seq: int
    head_hash: str
    anchor_seq: int | None
    problems: list[AuditProblemOut]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    workers: bool
    models: list[str]
    default_model: str | None
