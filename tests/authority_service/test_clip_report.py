"""authority_service.clip_report: reports of consecutive frame ranges merge into the report of all
of them, as one pass counts it (the join of a clip reversed in segments)."""

from __future__ import annotations

from dataclasses import asdict
from itertools import pairwise

from authority_service.clip_report import ClipReport
from authority_service.decoders import Decoder
from authority_service.messages import FrameMessage
from authority_service.sealed import MAX_FACE_ENTRIES, FrameFaces
from shared.geometry import Box
from shared.roi_message import RoiMessage


class _Card:
    def __init__(self, model_id: str) -> None:
        self.model_id = model_id


def _frames(count: int) -> list[tuple[int, FrameMessage | None, Decoder | None, FrameFaces]]:
    """Frames with 0-3 boxes, some without a message, two models, two runs, sealed faces of
    two keys, faces sent to Ud for each reason: every field of a report varies."""
    frames = []
    for i in range(count):
        if i % 7 == 3:
            frames.append((i, None, None, FrameFaces()))
            continue
        boxes = tuple(Box(10 * b, 10, 8, 8) for b in range(i % 4))
        message = RoiMessage(
            boxes=boxes,
            version="1" if i % 5 else "paper",
            camera_id=f"cam-{i // 300}",
            model_id=f"model-{i // 250}",
            frame_index=i,
            run_id=f"run-{i // 400}",
        )
        exact = {0: None} if boxes and i % 3 == 0 else {}
        ud = {
            b: ("no_payload", "not_in_payload", "key_not_held")[i % 3] for b in range(1, len(boxes))
        }
        faces = FrameFaces(
            exact=exact,
            codecs={0: "png"} if exact else {},
            ud=ud,
            key_id=f"key-{i // 500}" if exact else None,
            missing_key_ids=("key-gone",) if i % 3 == 2 and boxes else (),
        )
        decoder = Decoder(None, _Card(message.model_id), None) if boxes else None  # type: ignore[arg-type]
        frames.append((i, FrameMessage(message, verified=i % 5 != 0), decoder, faces))
    return frames


def _count(frames) -> ClipReport:
    report = ClipReport()
    for index, opened, decoder, faces in frames:
        report.count(opened, decoder)
        report.faces_by_method.add(index, faces, opened.message.boxes if opened else ())
    return report


def test_merged_reports_of_consecutive_ranges_equal_one_pass_over_all_of_them():
    frames = _frames(1200)  # about 1800 faces: the per-face list is capped at 1000
    whole = _count(frames)
    assert whole.faces > MAX_FACE_ENTRIES and whole.faces_by_method.faces_omitted > 0
    for cuts in ([16, 1184], [400, 416, 800], [1000], list(range(48, 1200, 48))):
        bounds = [0, *cuts, len(frames)]
        merged = ClipReport()
        for start, end in pairwise(bounds):
            merged.merge(_count(frames[start:end]))
        assert asdict(merged) == asdict(whole), cuts
        assert list(merged.faces_by_method.ud_reasons) == list(whole.faces_by_method.ud_reasons)
