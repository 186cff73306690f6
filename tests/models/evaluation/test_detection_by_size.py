"""Detection kept by ROI size, with the real edge detector (YuNet) on real head crops and two
stand-in de-identifiers whose answer is known: one that changes nothing, one that blacks the ROI."""

import pytest

from models.evaluation.detection_by_size import ROI_SIZE_BINS, detection_by_roi_size


class _Keep:
    def encode_frame(self, frame, boxes, ids=None):
        return frame.copy()


class _Black:
    def encode_frame(self, frame, boxes, ids=None):
        out = frame.copy()
        for box in boxes:
            out[box.y : box.bottom, box.x : box.right] = 0
        return out


@pytest.fixture(scope="module")
def three_faces(bbt_faces):
    return [crops[0] for crops in list(bbt_faces.faces.values())[:3]]


def test_unchanged_faces_are_all_kept_and_blacked_ones_none(three_faces, yunet):
    kept = detection_by_roi_size(three_faces, _Keep(), yunet, [yunet])
    assert list(kept["bins"]) == [f"{lo}-{hi}" for lo, hi in ROI_SIZE_BINS]
    found = [b["yunet"] for b in kept["bins"].values() if b["yunet"]["found_on_x"]]
    assert found, "YuNet found none of the faces in any bin"
    assert all(f["kept_fraction"] == 1.0 for f in found)
    assert kept["faces"] == 3
    assert sum(b["faces"] for b in kept["bins"].values()) + kept["edge_missed_on_x"] + kept[
        "outside_bins"
    ] == 3 * len(ROI_SIZE_BINS)
    missed = [b["edge_missed_on_x"] for b in kept["bins"].values()]
    assert sum(missed) == kept["edge_missed_on_x"]
    blacked = detection_by_roi_size(three_faces, _Black(), yunet, [yunet])
    assert all(
        b["yunet"]["kept"] == 0 for b in blacked["bins"].values() if b["yunet"]["found_on_x"]
    )


def test_bad_bins_raise(three_faces, yunet):
    with pytest.raises(ValueError, match="bins"):
        detection_by_roi_size(three_faces, _Keep(), yunet, [yunet], bins=[(40, 20)])
