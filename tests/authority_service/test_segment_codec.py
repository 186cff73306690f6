"""authority_service.segment_codec: a segment's result survives its trip through the database as
JSON: its report (face methods included), its frames' records for the face data, and its error
as the same typed error, code, detail and frame, so the job fails as one pass fails it."""

from __future__ import annotations

from dataclasses import asdict

from authority_service.clip_report import ClipReport
from authority_service.errors import ForgedMessageError, SealedFacesError
from authority_service.sealed import FrameFaces
from authority_service.segment_codec import decode_result, encode_result
from authority_service.segments import NO_PIXELS, SegmentPlanError, SegmentResult
from shared.geometry import Box

BOXES = (Box(8, 16, 64, 64), Box(96, 40, 128, 128))


def _result(failure: Exception | None) -> SegmentResult:
    faces = FrameFaces(
        exact={1: NO_PIXELS},
        codecs={1: "png"},
        ud={0: "key_not_held"},
        key_id=None,
        missing_key_ids=("k1",),
        mac_verified=True,
    )
    report = ClipReport(frames=2, frames_with_message=1, faces=2, model_ids=["toy"], fps=15.0)
    report.faces_by_method.add(32, faces, BOXES)
    return SegmentResult(
        3, report, "lsb", [(32, BOXES, faces), (33, None, FrameFaces())], failure, 1.5, 17.25
    )


def test_result_with_its_frames_and_report_comes_back_as_it_was():
    result = _result(None)
    back = decode_result(encode_result(result))
    assert asdict(back.report) == asdict(result.report)
    assert (back.index, back.carrier, back.seconds, back.started_at) == (3, "lsb", 1.5, 17.25)
    assert back.failure is None
    (index, boxes, faces), (_, no_message, _) = back.frames
    assert (index, boxes, no_message) == (32, BOXES, None)
    assert (sorted(faces.exact), faces.codecs, faces.ud) == ([1], {1: "png"}, {0: "key_not_held"})
    assert (faces.missing_key_ids, faces.mac_verified) == (("k1",), True)


def test_failure_comes_back_as_the_same_typed_error():
    forged = decode_result(encode_result(_result(ForgedMessageError("bad tag", frame=40))))
    assert isinstance(forged.failure, ForgedMessageError)
    assert (forged.failure.code, forged.failure.detail) == ("forged_message", "bad tag")
    assert forged.failure.extra == {"frame": 40}
    sealed = SealedFacesError("altered", frame=2, field="S1", reason="forged")
    back = decode_result(encode_result(_result(sealed))).failure
    assert isinstance(back, SealedFacesError) and back.extra == sealed.extra
    plan = decode_result(encode_result(_result(SegmentPlanError("segment 3: 4 of 16")))).failure
    assert isinstance(plan, SegmentPlanError) and str(plan) == "segment 3: 4 of 16"
