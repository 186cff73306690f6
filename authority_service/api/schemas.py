"""Request and response bodies of the HTTP API (separate models per direction)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from authority_service.approvals import REASON_MAX, REASON_MIN, REASON_PATTERN
from authority_service.job_store import Job, JobStatus
from authority_service.users import PASSWORD_MAX, USER_NAME_PATTERN, Role, User

__all__ = [
    "ApprovalOut",
    "AuditPage",
    "AuditProblemOut",
    "AuditRecordOut",
    "AuditVerifyOut",
    "ClipReportOut",
    "DecisionIn",
    "ErrorOut",
    "FaceMethodsOut",
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


class FaceMethodsOut(BaseModel):
    """How each face was reversed: from its sealed original (exact) or by Ud."""

    sealed: int = Field(0, description="Faces pasted back from their sealed original pixels.")
    ud: int = Field(0, description="Faces reversed by Ud (approximate).")
    ud_reasons: dict[str, int] = Field(
        default_factory=dict,
        description="Why faces went through Ud: `no_payload` (the message carries no sealed "
        "faces), `not_in_payload` (it did not fit at the edge), `key_not_held` (sealed only to "
        "keys this authority does not hold).",
    )
    key_ids: list[str] = Field(
        default_factory=list, description="The authority's keys that opened sealed faces."
    )
    missing_key_ids: list[str] = Field(
        default_factory=list, description="Keys faces were sealed to, none of them held here."
    )
    faces: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per face: `frame`, `box` (index in its message), `method` (`sealed` or "
        "`ud`), and `codec` (sealed) or `reason` (ud); the clip's first 1000 faces.",
    )
    faces_omitted: int = Field(0, description="Faces past that limit (counted, not listed).")


class ClipReportOut(BaseModel):
    """What a finished reconstruction did."""

    frames: int
    frames_reconstructed: int = Field(description="Frames with a message and at least one face.")
    frames_with_message: int
    frames_without_message: int = Field(description="Passed through unchanged.")
    faces: int
    verified_frames: int = Field(
        description="v1 messages checked with the camera's key (their tag, or from SEI their "
        "sealed faces)."
    )
    unverified_frames: int = Field(
        description="Paper-format, a camera without a known key, or read from SEI (lossy) "
        "without a sealed payload that verifies all its faces; non-zero only when "
        "`messages.require_authentication` is false."
    )
    message_source: str = Field(
        "",
        description="Where the messages were read: 'lsb' (lossless pixels, verifiable), 'sei' "
        "(a lossy stream's H.264 SEI units: verified only by sealed faces, Ud approximate).",
    )
    model_ids: list[str]
    camera_ids: list[str]
    message_versions: list[str]
    run_ids: list[str] = Field(
        default_factory=list,
        description="The edge runs (v1 run ids) the frames came from; a clip that spans a "
        "restart lists two. Empty for messages written before run ids existed.",
    )
    width: int
    height: int
    fps: float
    source_codec: str
    result_codec: str
    seconds: float
    faces_by_method: FaceMethodsOut = Field(default_factory=FaceMethodsOut)


class JobProgressOut(BaseModel):
    frames_done: int
    frames_total: int | None = Field(description="From the container; null when it says not.")


class JobErrorOut(BaseModel):
    error: str
    detail: str


class ApprovalOut(BaseModel):
    """The second user's decision on a job that needs one (``jobs.require_approval``)."""

    decision: Literal["approved", "refused"] | None = Field(
        description="null while the job is pending approval (or expired undecided)."
    )
    decided_by: str | None = Field(description="The approver.")
    decided_at: str | None
    reason: str | None = Field(description="The approver's reason.")


class DecisionIn(BaseModel):
    """An approver's decision on a pending job: why."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=REASON_MIN,
        max_length=REASON_MAX,
        pattern=REASON_PATTERN,
        description="Why (a sentence, no control characters); stored in the audit log.",
    )


class JobOut(BaseModel):
    id: str
    kind: Literal["clip", "frame"] = Field(
        description="`frame`: a frame sent to `POST /v1/frames:reconstruct` that needed approval; "
        "its result is a PNG."
    )
    status: Literal[
        "pending_approval", "queued", "running", "succeeded", "failed", "refused", "expired"
    ]
    owner: str = Field(description="Who requested the reversal.")
    case_id: str
    justification: str
    clip_sha256: str = Field(description="SHA-256 of the upload (clip or PNG frame).")
    clip_bytes: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    expires_at: str
    progress: JobProgressOut
    report: ClipReportOut | None
    error: JobErrorOut | None
    result_url: str | None = Field(description="Where to fetch the result once it succeeded.")
    approval: ApprovalOut | None = Field(
        description="null when the job needed no approval (`jobs.require_approval` was off)."
    )

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            kind=job.kind,  # type: ignore[arg-type]
            status=job.status,  # type: ignore[arg-type]
            owner=job.owner,
            case_id=job.case_id,
            justification=job.justification,
            clip_sha256=job.clip_sha256,
            clip_bytes=job.clip_bytes,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            expires_at=job.expires_at,
            progress=JobProgressOut(frames_done=job.frames_done, frames_total=job.frames_total),
            report=ClipReportOut(**job.report) if job.report else None,
            error=(
                JobErrorOut(error=job.error_code, detail=job.error_detail or "")
                if job.error_code
                else None
            ),
            result_url=(
                f"/v1/reconstructions/{job.id}/result"
                if job.status == JobStatus.succeeded
                else None
            ),
            approval=(
                ApprovalOut(
                    decision=job.decision,  # type: ignore[arg-type]
                    decided_by=job.decided_by,
                    decided_at=job.decided_at,
                    reason=job.decision_reason,
                )
                if job.approval_required
                else None
            ),
        )


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
