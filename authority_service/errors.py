"""Typed errors of the authority, each with a stable machine-readable ``code``.

The reconstruction core, the stores and the CLI raise these; the HTTP layer maps each ``code`` to
a status (:data:`authority_service.api.errors.STATUS_BY_CODE`) and returns
``{"error": code, "detail": message, ...}``. Nothing here knows about HTTP.

``detail`` and ``extra`` go to the client: they name what is wrong in the request, never a
server path, an ``errno`` or a library's own message (whoever raises logs the cause instead).
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "AuthorityError",
    "ClipError",
    "ConflictError",
    "CorruptVideoError",
    "ForgedMessageError",
    "GoneError",
    "InvalidRequestError",
    "MalformedMessageError",
    "ModelUnavailableError",
    "NoMessageError",
    "NotAVideoError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreviewUnavailableError",
    "RateLimitedError",
    "SealedFacesError",
    "SealingKeyNotHeldError",
    "ServiceBusyError",
    "UnauthenticatedMessageError",
    "UnknownModelError",
    "UnsupportedFrameSizeError",
    "UnsupportedImageError",
    "UploadTooLargeError",
]


class AuthorityError(Exception):
    """Base of every error the authority reports to a caller.

    Attributes:
        code: stable identifier (``"forged_message"``), what clients and the audit log key on.
        detail: a sentence for a human, naming what is wrong.
        extra: more JSON-serialisable facts (``{"frame": 12}``), returned with the error.
    """

    code = "error"

    def __init__(self, detail: str, *, code: str | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        if code is not None:
            self.code = code


class InvalidRequestError(AuthorityError):
    """A request field is missing or invalid (``extra["field"]`` names it)."""

    code = "invalid_request"


class UploadTooLargeError(AuthorityError):
    """The uploaded body exceeds the configured limit."""

    code = "upload_too_large"


class AuthenticationError(AuthorityError):
    """No credentials, wrong credentials, or an expired/forged/revoked token."""

    code = "not_authenticated"


class PermissionDeniedError(AuthorityError):
    """The authenticated user's role does not allow the action."""

    code = "permission_denied"


class RateLimitedError(AuthorityError):
    """Too many attempts; ``retry_after_s`` says when to try again."""

    code = "rate_limited"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s


class GoneError(AuthorityError):
    """The resource existed but was deleted (an expired job)."""

    code = "job_expired"


class NotFoundError(AuthorityError):
    """The named resource does not exist (or is not the caller's)."""

    code = "not_found"


class PreviewUnavailableError(AuthorityError):
    """A succeeded job has no such preview or face data: a frame job, or one that finished
    before they were recorded (its uploaded clip is deleted, so its public preview cannot be
    made any more)."""

    code = "preview_unavailable"


class ConflictError(AuthorityError):
    """The resource exists but is not in a state that allows the request."""

    code = "conflict"


class ServiceBusyError(AuthorityError):
    """The job queue is full; try later."""

    code = "service_busy"


class ClipError(AuthorityError):
    """Base of the errors about the submitted media itself (video, frame, message)."""


class NotAVideoError(ClipError):
    """The upload is not a video this service can read."""

    code = "not_a_video"


class CorruptVideoError(ClipError):
    """The upload is a video container but truncated or corrupt."""

    code = "corrupt_video"


class UnsupportedImageError(ClipError):
    """The uploaded frame is not an 8-bit RGB(A) PNG."""

    code = "unsupported_image"


class UnsupportedFrameSizeError(ClipError):
    """The clip's or frame's size is below what the service reverses (``extra``: its
    ``width``, ``height`` and the ``min_side``)."""

    code = "unsupported_frame_size"


class NoMessageError(ClipError):
    """No frame carries an ROI message, so there is nothing to reverse."""

    code = "no_message"


class MalformedMessageError(ClipError):
    """A frame carries text that announces an ROI message but breaks its grammar."""

    code = "malformed_message"


class ForgedMessageError(ClipError):
    """A v1 message's tag does not match its frame with the camera's key."""

    code = "forged_message"


class UnauthenticatedMessageError(ClipError):
    """Authentication is required but a message is unsigned or its camera has no key."""

    code = "unauthenticated_message"


class UnknownModelError(ClipError):
    """A message names a model this authority holds no decoder for."""

    code = "unknown_model"


class ModelUnavailableError(ClipError):
    """A paper-format message names no model and no default decoder is configured."""

    code = "no_default_model"


class SealedFacesError(ClipError):
    """A frame's sealed original faces do not open: the payload is malformed or truncated, was
    altered, belongs to another frame, camera or model (replayed), has a face moved to another
    box, or holds an image that is not its box's (``extra``: ``frame``, ``field``, ``reason``
    ``malformed`` | ``forged`` | ``undecodable``). Never a wrong face, never a silent ``Ud``."""

    code = "sealed_faces_invalid"


class SealingKeyNotHeldError(ClipError):
    """A frame's faces are sealed only to keys this authority does not hold, and
    ``sealing.on_key_not_held`` is ``error`` (``extra["key_ids"]``: the keys it needs)."""

    code = "sealing_key_not_held"
