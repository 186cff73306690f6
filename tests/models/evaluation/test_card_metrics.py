import numpy as np
import pytest

from models.evaluation.card_metrics import flatten_faces, measure_model, show_at_size
from models.evaluation.errors import EvaluationError
from tests.toy_models import write_toy_model_dir


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return write_toy_model_dir(tmp_path_factory.mktemp("toy"))


def _random_faces(identities=3, per_identity=2, size=80):
    rng = np.random.default_rng(0)
    return {
        f"id{i}": [
            rng.integers(0, 256, (size, size, 3)).astype(np.uint8) for _ in range(per_identity)
        ]
        for i in range(identities)
    }


def test_measure_model_toy_is_exact_at_model_size_and_bounded_elsewhere(toy_dir):
    result = measure_model(toy_dir, _random_faces(size=64), roi_sizes=(32, 64, 128))
    assert result["faces"] == 6 and result["identities"] == 3
    recon = result["reconstruction"]
    assert recon["model_tensors"]["exact_fraction"] == 1.0
    assert recon["by_roi_size"]["64"]["exact_fraction"] == 1.0
    assert recon["by_roi_size"]["64"]["ssim"] == pytest.approx(1.0)
    # Off the model size the 64x64 bottleneck loses detail of random content: not exact.
    assert recon["by_roi_size"]["128"]["exact_fraction"] == 0.0
    assert 5.0 < recon["by_roi_size"]["128"]["psnr_db"] < 40.0
    # The toy a = 1 - x: mean |x - a| = mean |2x - 1| = 0.5 for uniform x.
    assert result["mean_abs_x_minus_a"] == pytest.approx(0.5, abs=0.02)
    assert result["recognition"] == {}
    # The toy's 255 - x has exactly the fine detail of x.
    hf = result["public_face"]["hf_energy_ratio"]
    assert hf["luma"] == pytest.approx(1.0) and hf["chroma"] == pytest.approx(1.0)
    assert result["composition"] == {"resample": "replicate", "feather": 0.0, "sizes": [64]}


def test_measure_model_recognition_figures_with_sface(toy_dir, sface, bbt_faces):
    kept = {}
    result = measure_model(
        toy_dir, bbt_faces.faces, recognizers=[sface], roi_sizes=(64,), keep_scores=kept
    )
    figures = result["recognition"]["sface"]
    assert set(figures) >= {
        "x_x",
        "x_a",
        "x_r",
        "x_a_same",
        "a_a_noise",
        "landmarks_detected_fraction",
    }
    # The toy reverses exactly at 64 px; at native size r stays close to x: identity kept.
    assert figures["x_r"]["auc"] > 0.9
    assert figures["x_x"]["genuine_pairs"] == 4 * 3
    assert set(kept["sface"]) == {"x_x", "x_a", "x_r", "x_a_same", "a_a_noise"}
    # a_a_noise: two photos of one person, two noise planes (the toy ignores the noise).
    assert figures["a_a_noise"]["genuine_pairs"] == figures["x_x"]["genuine_pairs"]


def test_measure_clips_border_and_track_linkability(toy_dir, sface, tmp_path):
    from models.evaluation.card_metrics import measure_clips
    from tests.media import MEDIA_DIR

    source = MEDIA_DIR / "videos" / "hamilton_640x360.mp4"
    if not source.is_file():
        pytest.skip(f"{source} not present")
    figures = measure_clips(toy_dir, [source], recognizers=[sface], max_frames=6)
    assert figures["frames"] == 6 and figures["rois"] > 0
    border = figures["border_step_ratio"]
    # The toy's inverted face, hard-pasted, shows its border far more than the scene did.
    assert border["ratio"] > 1.5 and border["pairs"] > 0
    linkability = figures["a_a_track"]["sface"]
    assert "auc" in linkability or "skipped" in linkability


def test_measure_model_one_identity_raises(toy_dir):
    with pytest.raises(EvaluationError, match="identities"):
        measure_model(toy_dir, _random_faces(identities=1))


def test_flatten_faces_rejects_float_faces():
    with pytest.raises(EvaluationError, match="uint8"):
        flatten_faces({"a": [np.zeros((8, 8, 3))], "b": [np.zeros((8, 8, 3))]})


def test_show_at_size_returns_square_of_requested_side():
    face = np.zeros((90, 70, 3), np.uint8)
    assert show_at_size(face, 32).shape == (32, 32, 3)
    assert show_at_size(face, 128).shape == (128, 128, 3)


def test_card_cli_writes_json_for_a_toy_model(toy_dir, tmp_path, capsys):
    import json
    import shutil

    from models.evaluation.card import main
    from tests.media import MEDIA_DIR

    source = MEDIA_DIR / "identities" / "faceapi_bbt"
    if not source.is_dir():
        pytest.skip(f"{source} not present")
    for person in ("amy", "raj"):
        shutil.copytree(source / person, tmp_path / "set" / person)
    out = tmp_path / "figures.json"
    model = tmp_path / "model"
    shutil.copytree(toy_dir, model)
    args = ["--model", str(model), "--identities", str(tmp_path / "set")]
    code = main(
        [
            *args,
            "--recognizers",
            "sface",
            "--max-per-identity",
            "2",
            "--out",
            str(out),
            "--write-card",
        ]
    )
    assert code == 0
    figures = json.loads(out.read_text())
    card = json.loads((model / "card.json").read_text())
    assert card["metrics"]["faces"] == 4 and "--write-card" in card["metrics"]["command"]
    assert card["model_id"] == json.loads((toy_dir / "card.json").read_text())["model_id"]
    assert figures["faces"] == 4 and figures["evaluation_data"][str(tmp_path / "set")]["faces"] == 4
    assert figures["reconstruction"]["by_roi_size"]["64"]["psnr_db"] is None  # exact: inf -> null
    assert figures["reconstruction"]["by_roi_size"]["64"]["exact_fraction"] == 1.0
    assert "x_a" in figures["recognition"]["sface"]
    assert "a_a_noise" in figures["recognition"]["sface"]
    by_size = figures["public_face"]["detection_by_roi_size"]
    assert by_size["detectors"] == ["yunet", "centerface"] and by_size["faces"] == 4
    capsys.readouterr()


def test_card_cli_unknown_detector_exits_2(toy_dir, tmp_path, capsys):
    from models.evaluation.card import main

    (tmp_path / "set").mkdir()
    args = ["--model", str(toy_dir), "--identities", str(tmp_path / "set"), "--detectors", "x"]
    code = main(args)
    assert code == 2
    assert "unknown detector" in capsys.readouterr().err


def test_card_cli_missing_folder_exits_2(toy_dir, tmp_path, capsys):
    from models.evaluation.card import main

    assert main(["--model", str(toy_dir), "--identities", str(tmp_path / "none")]) == 2
    assert "not found" in capsys.readouterr().err
