"""edge_agent.model_check: a model without measured privacy figures, or failing them, is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.app import build_agent, build_processor
from edge_agent.model_check import (
    ModelRefusedError,
    check_decoder_private,
    check_privacy_figures,
)
from tests.toy_models import write_toy_model_dir


def _card(**recognition: dict) -> dict:
    return {"model_id": "m", "metrics": {"recognition": recognition}}


def test_check_privacy_figures_passes_and_returns_what_it_checked():
    card = _card(sface={"x_a": {"auc": 0.58}, "a_a_noise": {"auc": 0.55}}, dlib={"x_a": 0.6})
    checked = check_privacy_figures(card, max_x_a_auc=0.6, max_a_a_noise_auc=0.6)
    assert checked == {"dlib.x_a": 0.6, "sface.a_a_noise": 0.55, "sface.x_a": 0.58}


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ({"model_id": "m"}, "no measured privacy figures"),
        ({"model_id": "m", "metrics": {}}, "no measured privacy figures"),
        (_card(sface={"x_x": {"auc": 0.99}}), "no measured x<->a' AUC"),
        (_card(sface={"x_a": {"auc": 0.8}}), "sface x_a AUC 0.800 > 0.750"),
        (
            _card(sface={"x_a": {"auc": 0.6}, "a_a_noise": {"auc": 0.95}}),
            "sface a_a_noise AUC 0.950 > 0.900",
        ),
    ],
)
def test_check_privacy_figures_refuses_naming_what_is_wrong(card, message):
    with pytest.raises(ModelRefusedError, match=message):
        check_privacy_figures(card, max_x_a_auc=0.75, max_a_a_noise_auc=0.9)


def test_edge_refuses_a_model_without_figures_or_over_its_thresholds(
    make_settings, tmp_path, sample_clip
):
    bare = write_toy_model_dir(tmp_path / "bare", x_a_auc=None)
    with pytest.raises(ModelRefusedError, match="no measured privacy figures"):
        build_agent(make_settings(sample_clip, model={"dir": str(bare)}))
    linkable = write_toy_model_dir(tmp_path / "linkable", x_a_auc=0.7, decoder=False)
    settings = make_settings(
        sample_clip, model={"dir": str(linkable)}, privacy={"max_x_a_auc": 0.65}
    )
    with pytest.raises(ModelRefusedError, match=r"fixture x_a AUC 0\.700 > 0\.650"):
        build_processor(settings)
    relaxed = make_settings(sample_clip, model={"dir": str(linkable)})
    assert build_processor(relaxed).deidentifier.model_id


@pytest.mark.parametrize(
    ("decoder", "published", "message"),
    [
        (False, True, "decoder_published: true"),
        (False, None, "does not say whether its decoder is published"),
        (True, False, "ud.onnx is on the camera"),
    ],
)
def test_edge_refuses_a_model_whose_decoder_is_public_or_on_the_camera(
    make_settings, tmp_path, sample_clip, decoder, published, message
):
    model = write_toy_model_dir(tmp_path / "m", decoder=decoder, decoder_published=published)
    with pytest.raises(ModelRefusedError, match=message) as refused:
        build_processor(make_settings(sample_clip, model={"dir": str(model)}))
    assert "allow_public_decoder" in str(refused.value)  # the message says the way out
    demo = make_settings(
        sample_clip, model={"dir": str(model)}, privacy={"allow_public_decoder": True}
    )
    assert build_processor(demo).deidentifier.model_id


def test_an_edge_package_with_a_private_decoder_passes(tmp_path, caplog):
    model = write_toy_model_dir(tmp_path / "m", decoder=False, decoder_published=False)
    card = {"model_id": "m", "decoder_published": False}
    assert check_decoder_private(card, model, allow_public_decoder=False) is True
    assert check_decoder_private({"model_id": "m"}, model, allow_public_decoder=True) is False
    assert "allow_public_decoder is set" in caplog.text


def test_the_shipped_default_is_an_edge_package_whose_decoder_is_published():
    """The repository's default is public: the edge runs it only as a demo (README)."""
    from edge_agent.config import DEFAULT_MODEL_DIR
    from shared.model_dir import load_card

    repo = Path(__file__).resolve().parents[2]
    default = repo / DEFAULT_MODEL_DIR
    assert not (default / "ud.onnx").exists()
    card = load_card(default).raw
    assert card["decoder_published"] is True
    with pytest.raises(ModelRefusedError, match="decoder_published: true"):
        check_decoder_private(card, default, allow_public_decoder=False)
