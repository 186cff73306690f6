"""The evaluation suite end to end on a tiny set built in a temporary folder (real faces from
../shared/media where present, real codecs, real ONNX Runtime, the toy model)."""

import json
import shutil
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from models.evaluation.cli import main
from models.evaluation.errors import EvaluationError
from models.evaluation.suite import SuiteConfig, run_suite
from models.evaluation.suite_video import coverage, evaluate_video
from shared.detectors import FaceDetector
from shared.geometry import Box
from shared.video_io import LosslessWriter, read_frames
from tests.media import MEDIA_DIR, needs_media
from tests.toy_models import write_toy_model_dir


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return write_toy_model_dir(tmp_path_factory.mktemp("toy"))


def _write_clip(source, target, frames):
    writer = None
    for frame in read_frames(source):
        if frame.index >= frames:
            break
        if writer is None:
            height, width = frame.rgb.shape[:2]
            writer = LosslessWriter(target, width, height, 15, codec="ffv1")
        writer.write(frame.rgb)
    writer.close()


@pytest.fixture(scope="module")
def tiny_media(tmp_path_factory):
    """3 people x 2 photos, one ground-truth group photo, an 8-frame clip."""
    if not MEDIA_DIR.is_dir():
        pytest.skip(f"{MEDIA_DIR} not present")
    root = tmp_path_factory.mktemp("media")
    for person in ("howard", "penny", "sheldon"):
        target = root / "identities" / "bbt" / person
        target.mkdir(parents=True)
        for photo in sorted((MEDIA_DIR / "identities" / "faceapi_bbt" / person).iterdir())[:2]:
            shutil.copy(photo, target / photo.name)
    truth = ElementTree.parse(MEDIA_DIR / "images" / "dlib_faces" / "testing.xml")
    first = next(truth.getroot().iter("image"))
    images = root / "images" / "dlib_faces"
    images.mkdir(parents=True)
    shutil.copy(MEDIA_DIR / "images" / "dlib_faces" / first.get("file"), images)
    (images / "testing.xml").write_text(
        "<dataset><images>"
        + ElementTree.tostring(first, encoding="unicode")
        + "</images></dataset>"
    )
    (root / "videos").mkdir()
    _write_clip(MEDIA_DIR / "videos" / "hamilton_640x360.mp4", root / "videos" / "clip.mkv", 8)
    return root


@needs_media
def test_suite_writes_report_with_every_section(tiny_media, toy_dir, tmp_path):
    out = tmp_path / "report"
    code = main(
        [
            "--media", str(tiny_media), "--model", str(toy_dir), "--out", str(out),
            "--recognizers", "sface", "--baselines", "pixelate:8,deface",
            "--roi-sizes", "32,64", "--max-frames", "8", "--crf", "23,35",
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    markdown = (out / "report.md").read_text()
    assert "plumbing checks" in markdown
    faces = report["sections"]["faces"]["bbt"]
    assert faces["faces"] == 6 and faces["identities"] == 3
    assert set(faces["recognition"]["sface"]) >= {"x_x", "x_r", "x_a[uunet]", "x_a[deface]"}
    assert faces["reconstruction"]["by_roi_size"]["64"]["exact_fraction"] == 1.0
    assert set(faces["soft_labels"]["gender"]["agreement_x_a"]) == {"uunet", "pixelate:8", "deface"}
    detection = report["sections"]["detection"]["ground_truth"]
    assert detection["detectors"]["yunet"]["original"]["ap"] > 0.8
    assert (
        detection["detectors"]["yunet"]["pixelate:8"]["ap"]
        < detection["detectors"]["yunet"]["original"]["ap"]
    )
    video = report["sections"]["video"]["clip.mkv"]
    assert video["frames"] == 8 and video["rois"] > 0
    reversal = video["reversal"]
    assert reversal["lossless_ffv1"]["psnr_db"] > reversal["h264_crf35"]["psnr_db"]
    assert reversal["lossless_ffv1"]["bitrate_kbps"] > reversal["h264_crf35"]["bitrate_kbps"]
    assert 0.0 <= video["leak"]["leak_rate_frames"] <= 1.0
    assert video["public_face"]["border_step_ratio"]["rois"] == video["rois"]
    assert set(video["public_face"]["hf_energy_ratio"]) == {"luma", "chroma", "images"}
    by_size = faces["public_face"]["detection_by_roi_size"]
    assert by_size["detectors"] == ["yunet", "centerface"] and len(by_size["bins"]) == 4
    sweep = report["sections"]["feather"]
    assert [r["feather"] for r in sweep["rows"]] == [0.0, 0.04, 0.08, 0.12, 0.16]
    # The toy's inverted face: a wider band hides its border better.
    ratios = [r["border_step_ratio"]["ratio"] for r in sweep["rows"]]
    assert ratios[0] > ratios[-1] > 0
    assert "Feather sweep" in markdown and "Border step ratio" in markdown
    for plot in faces["plots"] + detection["plots"] + video["plots"] + sweep["plots"]:
        assert (out / plot).stat().st_size > 1000
        assert f"]({plot})" in markdown


class _NoFaces(FaceDetector):
    key = "blind"

    def _detect(self, frame):
        return []


class _Everywhere(FaceDetector):
    key = "everywhere"

    def _detect(self, frame):
        return [(10.0, 10.0, 40.0, 40.0, 0.9)]


def test_leak_rate_counts_frames_the_edge_missed(toy_dir, tmp_path):
    """An edge detector that finds nothing leaves every face uncovered: leak rate 1."""
    from models.evaluation.deid import UUNetCodec

    clip = tmp_path / "clip.mkv"
    with LosslessWriter(clip, 64, 48, 10, codec="ffv1") as writer:
        for value in range(4):
            writer.write(np.full((48, 64, 3), value * 40, np.uint8))
    result = evaluate_video(
        clip, UUNetCodec(toy_dir), _NoFaces(), _Everywhere(), [], tmp_path, crfs=(23,)
    )
    assert result["frames"] == 4 and result["rois"] == 0
    assert result["leak"]["leak_rate_frames"] == 1.0
    assert result["leak"]["uncovered_faces"] == 4
    assert "reversal" not in result


def test_coverage_fraction_of_face_inside_rois():
    face = Box(0, 0, 10, 10)
    assert coverage(face, [Box(0, 0, 5, 10)], 20, 20) == pytest.approx(0.5)
    assert coverage(face, [Box(0, 0, 5, 10), Box(5, 0, 5, 10)], 20, 20) == 1.0
    assert coverage(face, [], 20, 20) == 0.0


def test_suite_on_empty_media_raises(toy_dir, tmp_path):
    (tmp_path / "media").mkdir()
    config = SuiteConfig(
        media=tmp_path / "media", model=toy_dir, out=tmp_path / "out", recognizers=()
    )
    with pytest.raises(EvaluationError, match="nothing to measure"):
        run_suite(config)


def test_cli_missing_model_exits_2(tmp_path, capsys):
    (tmp_path / "media").mkdir()
    code = main(
        [
            "--media",
            str(tmp_path / "media"),
            "--model",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "model directory not found" in capsys.readouterr().err


def test_cli_unknown_baseline_exits_2(toy_dir, tmp_path, capsys):
    (tmp_path / "media").mkdir()
    code = main(
        [
            "--media",
            str(tmp_path / "media"),
            "--model",
            str(toy_dir),
            "--out",
            str(tmp_path / "o"),
            "--baselines",
            "blur",
        ]
    )
    assert code == 2
    assert "unknown baseline" in capsys.readouterr().err
