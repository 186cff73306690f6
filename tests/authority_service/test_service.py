"""authority_service.service: which decoder serves paper-format messages."""

from __future__ import annotations

from authority_service import service
from tests.authority_service.conftest import settings_for
from tests.toy_models import write_toy_model_dir


def test_default_model_dir_override_then_configured_then_shipped(tmp_path, monkeypatch):
    shipped = write_toy_model_dir(tmp_path / "weights" / "default")
    monkeypatch.setattr(service, "SHIPPED_DEFAULT_MODEL_DIR", shipped)
    on = settings_for(tmp_path, tmp_path / "m", models={"shipped_default": True})
    off = settings_for(tmp_path, tmp_path / "m")  # the test settings turn it off
    configured = settings_for(tmp_path, tmp_path / "m", models={"default_model_dir": tmp_path})
    assert service.default_model_dir(on) == shipped
    assert service.default_model_dir(off) is None
    assert service.default_model_dir(configured) == tmp_path
    assert service.default_model_dir(configured, override=tmp_path / "cli") == tmp_path / "cli"
    (shipped / "card.json").unlink()  # nothing shipped on this checkout
    assert service.default_model_dir(on) is None
