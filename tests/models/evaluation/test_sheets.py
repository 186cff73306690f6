import cv2
import numpy as np

from models.evaluation.deid import UUNetCodec
from models.evaluation.sheets import SHEET_SIZES, face_sheet, main
from tests.media import MEDIA_DIR, needs_media
from tests.toy_models import write_toy_model_dir


def test_face_sheet_shows_x_a_r_at_their_size(tmp_path):
    codec = UUNetCodec(write_toy_model_dir(tmp_path / "toy"))
    face = np.random.default_rng(0).integers(0, 256, (90, 90, 3)).astype(np.uint8)
    sheet = face_sheet(codec, [face, face], label="toy")
    assert sheet.dtype == np.uint8 and sheet.shape[1] == sum(3 * s + 4 for s in SHEET_SIZES) + 30
    row_height = max(SHEET_SIZES) + 6
    top = sheet.shape[0] - 2 * row_height  # below the title and the column labels
    # The 64 px tiles (after the 32 px group) of the first row: x, then the toy's a = 255 - x
    # (exact at the model's size), then r = x.
    left = 6 + (3 * 32 + 4) + 6
    x, a, r = (sheet[top : top + 64, left + k * 66 : left + k * 66 + 64] for k in range(3))
    np.testing.assert_array_equal(a, 255 - x)
    np.testing.assert_array_equal(r, x)
    assert x.std() > 20  # a face tile, not the background


@needs_media
def test_sheets_cli_writes_both_pngs(tmp_path, capsys):
    model = write_toy_model_dir(tmp_path / "toy")
    out = tmp_path / "sheets"
    code = main(
        ["--model", str(model), "--out", str(out), "--media", str(MEDIA_DIR), "--faces", "2",
         "--frames", "6", "--label", "toy"]
    )  # fmt: skip
    assert code == 0
    for name in ("faces_x_a_r.png", "frame_public_vs_source.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100
    capsys.readouterr()


def test_sheets_cli_missing_clip_exits_2(tmp_path, capsys):
    model = write_toy_model_dir(tmp_path / "toy")
    code = main(["--model", str(model), "--out", str(tmp_path), "--clip", str(tmp_path / "no")])
    assert code == 2
    assert "clip not found" in capsys.readouterr().err
