"""Media files over HTTP with byte ranges, as a browser's ``<video>`` fetches them.

:func:`media_response` serves a file whole (200) or one byte range of it (206 Partial Content,
``Content-Range``), always with ``Accept-Ranges: bytes`` and ``Cache-Control: no-store`` (a
preview shows faces: no browser or proxy cache keeps it). Chromium needs ranges to seek: it
asks ``bytes=0-`` first, then ``bytes=N-`` wherever the user seeks.

Ranges follow RFC 9110 section 14: ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` (the last
``n`` bytes); an end past the file is cut to it. A range that starts at or past the end of the
file (or ``bytes=-0``) is unsatisfiable: 416 with ``Content-Range: bytes */<size>`` and the
usual JSON error (``range_not_satisfiable``; its attempt audited as refused). What the RFC
lets a server ignore is ignored, and the whole file sent (200): a header that does not parse,
another unit, several ranges (no ``multipart/byteranges``), or an ``If-Range`` that is not the
file's current ``ETag``.

Starlette's own ``FileResponse`` (1.10) handles ranges too, but answers a bad one with a plain
text 416 or 400 that carries neither ``no-store`` nor the JSON error of this API; hence this
module. The file is opened before the response starts, so a file that expiry deletes meanwhile
is still sent whole from the open descriptor.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from authority_service.api.errors import refusal_response
from authority_service.errors import GoneError

__all__ = ["NO_STORE", "ByteRange", "RangeNotSatisfiableError", "media_response", "parse_range"]

log = logging.getLogger(__name__)

#: Headers of every media and face-data response.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
CHUNK_BYTES = 256 * 1024
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class RangeNotSatisfiableError(ValueError):
    """The range asks for bytes past the end of the file."""


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` of a file, both included."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range ``header`` (a ``Range`` value) asks of a ``size``-byte file;
    ``None`` to send it whole (no header, or one the RFC lets a server ignore).

    Raises:
        RangeNotSatisfiableError: a well-formed range that no byte of the file satisfies.
    """
    if header is None:
        return None
    match = _RANGE.match(header)
    if match is None:  # another unit, several ranges, or not a range at all: ignored
        return None
    first, last = match.groups()
    if first:
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None  # invalid: ignored
        if start >= size:
            raise RangeNotSatisfiableError(f"it has {size} bytes")
        return ByteRange(start, min(end, size - 1))
    if not last:
        return None  # "bytes=-": not a range
    suffix = int(last)
    if suffix == 0 or size == 0:
        raise RangeNotSatisfiableError(f"it has {size} bytes; a suffix range needs at least 1")
    return ByteRange(max(0, size - suffix), size - 1)


def _etag(info: os.stat_result) -> str:
    return f'"{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}"'


def _chunks(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    try:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK_BYTES, length))
            if not chunk:
                log.error("%s ended %d bytes early", handle.name, length)
                return
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def media_response(
    request: Request,
    path: Path,
    *,
    media_type: str = "video/mp4",
    before_send: Callable[[int | None], object] | None = None,
) -> Response:
    """``path`` whole or the byte range ``request`` asks for (module docstring).

    ``before_send(start)`` is called once the range is known to be satisfiable and before the
    response is built: ``start`` is the first byte sent, ``None`` for the whole file. The
    routes audit the view there (:func:`authority_service.previews.record_view`); what it
    raises ends the request.

    Raises:
        GoneError: the file is no longer there.
        Whatever ``before_send`` raises.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the body iterator
    except FileNotFoundError as exc:
        raise GoneError(f"{path.name} is no longer on disk") from exc
    try:
        info = os.fstat(handle.fileno())
        size, etag = info.st_size, _etag(info)
        headers = {**NO_STORE, "Accept-Ranges": "bytes", "ETag": etag}
        if_range = request.headers.get("if-range")
        header = request.headers.get("range") if if_range in (None, etag) else None
        try:
            wanted = parse_range(header, size)
        except RangeNotSatisfiableError as exc:
            handle.close()
            return refusal_response(
                request,
                416,
                "range_not_satisfiable",
                f"the range {header!r} asks for bytes past the end of the file ({exc})",
                {**headers, "Content-Range": f"bytes */{size}"},
                size=size,
            )
        if before_send is not None:
            before_send(wanted.start if wanted is not None else None)
    except BaseException:
        handle.close()
        raise
    if wanted is None:
        headers["Content-Length"] = str(size)
        body = _chunks(handle, 0, size)
        return StreamingResponse(body, 200, headers=headers, media_type=media_type)
    headers["Content-Length"] = str(wanted.length)
    headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{size}"
    body = _chunks(handle, wanted.start, wanted.length)
    return StreamingResponse(body, 206, headers=headers, media_type=media_type)
