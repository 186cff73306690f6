"""A segment's result (:class:`~authority_service.segments.SegmentResult`) as JSON text, and
back: how the job queue's segment tasks hand theirs to the task that joins the clip, through the
database (:mod:`authority_service.segment_store`).

What travels: the segment's report, the carrier it read, its frames' records for ``on_frame``
(boxes, which opened exactly and how; never pixels), its time, and the error that stopped it
(a :class:`~authority_service.errors.ClipError` by its code, detail and extra facts, so the job
fails exactly as one pass fails it; :class:`~authority_service.segments.SegmentPlanError` and
:class:`~authority_service.segments.SegmentWorkerError` by their message).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from authority_service.clip_report import ClipReport
from authority_service.errors import ClipError
from authority_service.sealed import FaceMethods, FrameFaces
from authority_service.segments import (
    NO_PIXELS,
    FrameRecord,
    SegmentPlanError,
    SegmentResult,
    SegmentWorkerError,
)
from shared.geometry import Box

__all__ = ["decode_result", "encode_result"]


def _clip_errors(base: type[ClipError] = ClipError) -> dict[str, type[ClipError]]:
    """Every :class:`ClipError` class by its code."""
    found: dict[str, type[ClipError]] = {}
    for cls in base.__subclasses__():
        found[cls.code] = cls
        found.update(_clip_errors(cls))
    return found


def _failure(exc: Exception | None) -> dict[str, Any] | None:
    if exc is None:
        return None
    if isinstance(exc, ClipError):
        return {"kind": "clip", "code": exc.code, "detail": exc.detail, "extra": exc.extra}
    kind = "plan" if isinstance(exc, SegmentPlanError) else "worker"
    return {"kind": kind, "detail": str(exc)}


def _exception(value: dict[str, Any] | None) -> Exception | None:
    if value is None:
        return None
    if value["kind"] == "clip":
        cls = _clip_errors().get(value["code"], ClipError)
        return cls(value["detail"], code=value["code"], **value["extra"])
    if value["kind"] == "plan":
        return SegmentPlanError(value["detail"])
    return SegmentWorkerError(value["detail"])


def _record(record: FrameRecord) -> list[Any]:
    index, boxes, faces = record
    return [
        index,
        None if boxes is None else [[b.x, b.y, b.w, b.h] for b in boxes],
        sorted(faces.exact),
        faces.codecs,
        faces.ud,
        faces.key_id,
        list(faces.missing_key_ids),
        faces.mac_verified,
    ]


def _frame_record(value: list[Any]) -> FrameRecord:
    index, boxes, exact, codecs, ud, key_id, missing, verified = value
    faces = FrameFaces(
        exact=dict.fromkeys(exact, NO_PIXELS),
        codecs={int(k): v for k, v in codecs.items()},
        ud={int(k): v for k, v in ud.items()},
        key_id=key_id,
        missing_key_ids=tuple(missing),
        mac_verified=verified,
    )
    return index, None if boxes is None else tuple(Box(*b) for b in boxes), faces


def _report(values: dict[str, Any]) -> ClipReport:
    methods = FaceMethods(**values.pop("faces_by_method"))
    return ClipReport(**values, faces_by_method=methods)


def encode_result(result: SegmentResult) -> str:
    """``result`` as JSON text (the frames' pixels, never kept in a record, are not in it)."""
    return json.dumps(
        {
            "index": result.index,
            "report": asdict(result.report),
            "carrier": result.carrier,
            "frames": [_record(r) for r in result.frames],
            "failure": _failure(result.failure),
            "seconds": result.seconds,
            "started_at": result.started_at,
        },
        separators=(",", ":"),
    )


def decode_result(text: str) -> SegmentResult:
    """The result :func:`encode_result` wrote.

    Raises:
        ValueError / KeyError / TypeError: ``text`` is not such a result.
    """
    value = json.loads(text)
    return SegmentResult(
        value["index"],
        _report(value["report"]),
        value["carrier"],
        [_frame_record(r) for r in value["frames"]],
        _exception(value["failure"]),
        value["seconds"],
        value["started_at"],
    )
