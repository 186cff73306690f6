"""Multipart uploads, parsed by the route *after* it has authenticated the caller.

FastAPI parses ``File``/``Form`` parameters before any dependency runs, so an anonymous client
could make the service spool a large body to disk before being told 401. Reversal routes
therefore read their body here, once the bearer and role are checked: the declared
``Content-Length`` is checked first, then every received byte counts against the limit.
The same two checks (:func:`check_declared_length`, :func:`limited_receive`) enforce the small
limit of every other route (``authority_service.api.app.SmallBodyLimit``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from authority_service.errors import AuthorityError, InvalidRequestError, UploadTooLargeError
from shared.private_files import open_private

__all__ = [
    "MalformedRequestError",
    "MultipartUpload",
    "check_declared_length",
    "limited_receive",
    "multipart_schema",
    "read_all",
    "read_multipart",
    "save_upload",
]

_TEXT_FIELD_BYTES = 64 * 1024
_COPY_CHUNK = 1024 * 1024


class MalformedRequestError(AuthorityError):
    """The body is not valid multipart/form-data."""

    code = "malformed_request"


@dataclass
class MultipartUpload:
    """The file part and text fields of a parsed form (close :attr:`file` when done)."""

    file: UploadFile
    fields: dict[str, str]


def _too_large(limit: int) -> UploadTooLargeError:
    return UploadTooLargeError(
        f"the upload exceeds this service's limit of {limit} bytes", limit_bytes=limit
    )


def check_declared_length(request: Request, limit: int) -> None:
    """Refuse a body whose ``Content-Length`` is over ``limit`` before reading any of it.

    Raises:
        UploadTooLargeError: it is (``limit_bytes`` named).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


def limited_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that counts every body byte (a chunked body declares no length) and raises
    :class:`UploadTooLargeError` once more than ``limit`` have come."""
    received = 0

    async def counting_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
        return message

    return counting_receive


async def read_multipart(
    request: Request,
    *,
    limit: int,
    file_field: str,
    text_fields: Sequence[str],
) -> MultipartUpload:
    """Parse ``multipart/form-data`` with one file part and the named text fields.

    Text fields are stripped; each must be present and non-empty (range checks are the
    caller's).

    Raises:
        UploadTooLargeError: the body is (or declares to be) larger than ``limit`` bytes.
        MalformedRequestError: not parseable multipart (or the client went away).
        InvalidRequestError: the file or a text field is missing or empty (``field`` named).
    """
    check_declared_length(request, limit)
    limited = Request(request.scope, limited_receive(request.receive, limit))
    try:
        form = await limited.form(
            max_files=1, max_fields=len(text_fields) + 4, max_part_size=_TEXT_FIELD_BYTES
        )
    except HTTPException as exc:  # Starlette's MultiPartException, as raised inside an app
        raise MalformedRequestError(f"the multipart body is invalid: {exc.detail}") from exc
    except ClientDisconnect as exc:
        raise MalformedRequestError("the client disconnected during the upload") from exc
    upload = form.get(file_field)
    fields: dict[str, str] = {}
    try:
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError(
                f"the file part {file_field!r} is missing (multipart/form-data)", field=file_field
            )
        for name in text_fields:
            value = form.get(name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidRequestError(f"the field {name!r} is missing or empty", field=name)
            fields[name] = value.strip()
    except AuthorityError:
        await form.close()
        raise
    return MultipartUpload(upload, fields)


def save_upload(source: BinaryIO, destination: Path) -> tuple[str, int]:
    """Copy an upload to ``destination``; return its SHA-256 (hex) and size in bytes."""
    digest = hashlib.sha256()
    size = 0
    source.seek(0)
    with open_private(destination, "wb") as out:  # 0600: a clip of someone's faces
        while chunk := source.read(_COPY_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def read_all(source: BinaryIO) -> tuple[bytes, str]:
    """Read an upload into memory; return its bytes and SHA-256 (hex)."""
    source.seek(0)
    data = source.read()
    return data, hashlib.sha256(data).hexdigest()


def multipart_schema(
    file_field: str, file_description: str, text_fields: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of such a route (its body is not a FastAPI parameter)."""
    properties: dict[str, Any] = {
        file_field: {"type": "string", "format": "binary", "description": file_description}
    }
    properties.update(text_fields)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [file_field, *text_fields],
                        "properties": properties,
                    }
                }
            },
        }
    }
