"""authority_service.service: which decoder serves paper-format messages."""

from __future__ import annotations

from authority_service import service
from tests.authority_service.conftest import settings_for
from tests.toy_models import write_toy_model_dir


def test_default_model_dir_override_then_configured_then_shipped(tmp_path, monkeypatch):
    decoders = tmp_path / "weights" / "decoders"
    shipped = write_toy_model_dir(decoders / "toy0123456789abc")
    (decoders / "DEFAULT").write_text("toy0123456789abc\n")
    monkeypatch.setattr(service, "SHIPPED_DECODERS_DIR", decoders)
    on = settings_for(tmp_path, tmp_path / "m", models={"shipped_default": True})
    off = settings_for(tmp_path, tmp_path / "m")  # the test settings turn it off
    configured = settings_for(tmp_path, tmp_path / "m", models={"default_model_dir": tmp_path})
    assert service.default_model_dir(on) == shipped
    assert service.default_model_dir(off) is None
    assert service.default_model_dir(configured) == tmp_path
    assert service.default_model_dir(configured, override=tmp_path / "cli") == tmp_path / "cli"
    (shipped / "card.json").unlink()  # nothing shipped on this checkout
    assert service.default_model_dir(on) is None


def test_a_models_folder_names_its_default_decoder(tmp_path, caplog):
    models = tmp_path / "decoders"
    named = write_toy_model_dir(models / "toy0123456789abc", decoder=True)
    settings = settings_for(tmp_path, models)
    assert service.default_model_dir(settings) is None  # no DEFAULT file
    (models / "DEFAULT").write_text("toy0123456789abc\n")
    assert service.default_model_dir(settings) == named
    (models / "DEFAULT").write_text("0000000000000000\n")  # names no folder here
    with caplog.at_level("WARNING", logger="authority_service.service"):
        assert service.default_model_dir(settings) is None
    assert "names model '0000000000000000'" in caplog.text
