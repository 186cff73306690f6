"""models.attack / attack_eval: a decoder trained from ue.onnx alone, resumed, refused, measured."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from models import cli as models_cli
from models.attack import ATTACK_FILE, AttackSettings, load_attack_decoder, run_attack
from models.attack_eval import evaluate_attack, render_table
from models.checkpoint import load_checkpoint
from models.data import make_synthetic_faces, make_synthetic_tracklets
from models.distributed import DistContext
from models.export import export_run
from models.face_source import split_subjects
from models.runloop import RunDir
from models.runs import run_deid
from models.train_matcher import build_matcher
from shared.model_dir import ModelDirError, load_card
from tests.media import MEDIA_DIR, REPO, needs_media
from tests.models.test_cli import ENV
from tests.models.tiny import LABELS, tiny_deid_config, tiny_stream

#: Fast settings for 16 x 16 crops: one ROI size, small batches, frequent checkpoints.
FAST = dict(batch=8, roi_sizes=(16,), holdout_fraction=0.25, seed=0, log_every=5)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny UU-Net export (ue.onnx, ud.onnx, card.json at 16 px), as `uunet-train export`."""
    root = tmp_path_factory.mktemp("attack_model")
    config = tiny_deid_config(steps=2)
    run_deid(
        config,
        root / "run",
        build_matcher(LABELS, 16),
        tiny_stream(config),
        torch.rand(2, 3, 16, 16),
        DistContext(torch.device("cpu")),
        progress=False,
    )
    export_run(root / "run", root / "model")
    return root / "model"


@pytest.fixture(scope="module")
def pack():
    return make_synthetic_faces(24, 2, 2, size=16, seed=3)


@pytest.fixture(scope="module")
def pack_file(tmp_path_factory):
    """A real pack file (`uunet-train pack` of a synthetic tracklet folder) for the CLI."""
    root = tmp_path_factory.mktemp("attack_pack")
    made = make_synthetic_tracklets(root / "faces", n_subjects=6, sequences=2, frames=2, size=32)
    out = root / "p.npz"
    done = _cli("pack", "--out", str(out), "--size", "16", "--folder", str(made.tracklets_root))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "models.cli", *args],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _attack(model, pack, tmp_path, name="a", **overrides):
    settings = AttackSettings(**{**FAST, "checkpoint_every": 10, "steps": 40, **overrides})
    return run_attack(
        model / "ue.onnx",
        pack,
        tmp_path / name / "work",
        tmp_path / name / "out",
        settings,
        progress=False,
    )


def test_training_lowers_the_held_out_error_and_exports_a_checked_decoder(
    model_dir, pack, tmp_path
):
    summary = _attack(model_dir, pack, tmp_path, steps=200, checkpoint_every=50, lr=2e-3)
    held = summary["held_l1"]
    assert held["faces"] == 6  # one photo of each of the 6 held-out subjects (0.25 of 24)
    assert held["last"] < 0.7 * held["step_0"], held
    # Better than knowing nothing of the face (the mean training face): it reads Ue's output.
    train, held_out = split_subjects(pack, 0.25, 0)
    faces = pack.images.astype(np.float32) / 255
    mean_face = faces[np.isin(pack.subject, train)].mean(axis=0)
    first = np.unique(pack.subject, return_index=True)[1][held_out]
    assert held["last"] < 0.9 * float(np.abs(faces[first] - mean_face).mean()), held
    assert summary["split"] == {
        "holdout_fraction": 0.25,
        "seed": 0,
        "training_subjects": 18,
        "training_faces": 72,
        "held_out_subjects": 6,
    }
    card = load_card(model_dir)
    path = tmp_path / "a" / "out" / ATTACK_FILE
    model = load_attack_decoder(path, card)
    assert model.metadata["target_model_id"] == card.model_id
    assert model.metadata["model_id"] == summary["export"]["model_id"] != card.model_id
    assert summary["export"]["max_abs_diff"] <= 1e-4
    assert model(np.random.rand(3, 3, 16, 16).astype(np.float32)).shape == (3, 3, 16, 16)
    saved = json.loads((tmp_path / "a" / "out" / "attack.json").read_text())
    assert saved["steps"] == 200 and saved["target_model_id"] == card.model_id


def test_a_resumed_run_continues_from_its_checkpoint_to_the_same_decoder(model_dir, pack, tmp_path):
    straight = _attack(model_dir, pack, tmp_path, "straight", steps=20)
    _attack(model_dir, pack, tmp_path, "resumed", steps=10)
    work = tmp_path / "resumed" / "work"
    assert load_checkpoint(work / "checkpoint.pt")["step"] == 10
    resumed = _attack(model_dir, pack, tmp_path, "resumed", steps=20)
    assert resumed["steps"] == 20
    assert [r["step"] for r in RunDir(work).read_history()] == [0, 5, 10, 15, 20]
    # Same weights as the uninterrupted run: optimiser, data order and noise planes resumed.
    assert resumed["export"]["model_id"] == straight["export"]["model_id"]
    # Another data split is another attack: refused, not mixed into this one.
    with pytest.raises(ValueError, match="holdout_fraction"):
        _attack(model_dir, pack, tmp_path, "resumed", steps=30, holdout_fraction=0.5)


def test_a_corrupt_ud_onnx_beside_ue_is_never_opened(model_dir, pack, tmp_path):
    copy = tmp_path / "edge"
    shutil.copytree(model_dir, copy)
    (copy / "ud.onnx").write_bytes(b"not an onnx file")
    summary = _attack(copy, pack, tmp_path, steps=5)
    assert summary["steps"] == 5 and (tmp_path / "a" / "out" / ATTACK_FILE).is_file()


def test_the_command_refuses_a_missing_or_wrong_ue_and_a_malformed_card(
    model_dir, pack_file, tmp_path, capsys
):
    options = [
        "--pack", str(pack_file), "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"),
        "--steps", "2", "--holdout-fraction", "0.5", "--roi-sizes", "16,32",
    ]  # fmt: skip

    def refused(ue) -> str:
        """The command run in this process (a refusal needs no fresh interpreter): its
        standard error, after checking it exited 2."""
        assert models_cli.main(["attack", "--ue", str(ue), *options]) == 2
        return capsys.readouterr().err

    assert "encoder not found" in refused(tmp_path / "nowhere" / "ue.onnx")
    assert "give a model directory's ue.onnx" in refused(model_dir / "ud.onnx")
    swapped = tmp_path / "swapped"
    shutil.copytree(model_dir, swapped)
    shutil.copy(model_dir / "ud.onnx", swapped / "ue.onnx")  # a decoder where Ue should be
    assert "expected inputs ['x']" in refused(swapped / "ue.onnx")
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "card.json").write_text("{not json")
    assert "cannot read model card" in refused(broken / "ue.onnx")
    card = json.loads((model_dir / "card.json").read_text())
    (broken / "card.json").write_text(json.dumps({**card, "input_size": "16"}))
    assert "input_size must be an integer" in refused(broken / "ue.onnx")
    assert not (tmp_path / "o" / ATTACK_FILE).exists()
    ok = _cli("attack", "--ue", str(model_dir / "ue.onnx"), *options)  # the real command
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout.splitlines()[-1])["steps"] == 2


def test_evaluation_measures_both_decoders_side_by_side(model_dir, pack, tmp_path):
    _attack(model_dir, pack, tmp_path, steps=20)
    faces = {f"s{s}": [pack.image(i) for i in np.flatnonzero(pack.subject == s)] for s in (0, 1, 2)}
    report = evaluate_attack(model_dir, tmp_path / "a" / "out", faces, roi_sizes=(16, 32))
    for name in ("real_ud", "attack"):
        assert set(report[name]["reconstruction"]["by_roi_size"]) == {"16", "32"}
    # One Ue, one set of noise planes: the surrogates are the same; only the decoder differs.
    assert report["real_ud"]["mean_abs_x_minus_a"] == report["attack"]["mean_abs_x_minus_a"]
    real, attack = (report[n]["reconstruction"]["by_roi_size"]["16"] for n in ("real_ud", "attack"))
    assert real["psnr_db"] != attack["psnr_db"]
    table = report["table"]
    assert table[0][0] == "PSNR r vs x at 16 px (dB)"
    assert table[0][1:] == [real["psnr_db"], attack["psnr_db"]]
    assert table[-1][2] == "n/a: encrypted" and report["sealed_frame"]["attack"] == table[-1][2]
    assert report["attack_seen_identities"]["checked"] is False  # an in-memory pack
    assert "| n/a: encrypted |" in render_table(table)[-1]


def test_an_attack_decoder_of_another_model_is_refused(model_dir, pack, tmp_path):
    _attack(model_dir, pack, tmp_path, steps=2)
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    card = json.loads((other / "card.json").read_text())
    (other / "card.json").write_text(json.dumps({**card, "model_id": "0123456789abcdef"}))
    with pytest.raises(ModelDirError, match="expected 'attack_ud' for '0123456789abcdef'"):
        load_attack_decoder(tmp_path / "a" / "out" / ATTACK_FILE, load_card(other))
    with pytest.raises(ModelDirError, match="role 'ud'"):
        load_attack_decoder(model_dir / "ud.onnx", load_card(model_dir))


def test_the_memo_recognizer_embeds_each_image_once_and_as_the_recognizer_does():
    from models.attack_eval import MemoRecognizer
    from models.evaluation.recognizers import SFaceRecognizer

    sface, calls = SFaceRecognizer(), []

    class Counting:
        name = "sface"
        locate = staticmethod(sface.locate)

        def embed(self, faces, geometries=None):
            calls.append(len(faces))
            return sface.embed(faces, geometries)

    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    memo = MemoRecognizer(Counting())
    geometries = [memo.locate(f) for f in faces]
    first = memo.embed(faces, geometries)
    np.testing.assert_array_equal(first, sface.embed(faces, geometries))
    again = memo.embed([faces[2], faces[0], rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)])
    np.testing.assert_array_equal(again[:2], first[[2, 0]])
    assert calls == [3, 1]  # only the new image was embedded the second time


@needs_media
def test_attack_eval_command_writes_the_report_and_logs_the_table(model_dir, pack, tmp_path):
    _attack(model_dir, pack, tmp_path, steps=5)
    report = tmp_path / "report.json"
    done = _cli(
        "attack-eval", "--model", str(model_dir), "--attack", str(tmp_path / "a" / "out"),
        "--identities", str(MEDIA_DIR / "identities" / "faceapi_bbt"), "--max-identities", "3",
        "--max-per-identity", "2", "--recognizers", "sface", "--roi-sizes", "16",
        "--report", str(report),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(report.read_text())
    assert figures["real_ud"]["faces"] == figures["attack"]["faces"] == 6
    assert figures["evaluation_data"][str(MEDIA_DIR / "identities" / "faceapi_bbt")]["faces"] == 6
    auc = figures["attack"]["recognition"]["sface"]["x_r"]["auc"]
    assert [r for r in figures["table"] if r[0] == "sface AUC x<->r'"] == [
        ["sface AUC x<->r'", figures["real_ud"]["recognition"]["sface"]["x_r"]["auc"], auc]
    ]
    assert "| from a sealed frame's payload |" in done.stderr
    missing = _cli(
        "attack-eval", "--model", str(model_dir), "--attack", str(tmp_path / "nothing"),
        "--identities", str(MEDIA_DIR / "identities" / "faceapi_bbt"), "--report", str(report),
    )  # fmt: skip
    assert missing.returncode == 2 and "attack decoder not found" in missing.stderr
