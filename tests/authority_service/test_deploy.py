"""The deployment files agree with the code: the example settings load (also with the
overrides compose sets), and what compose mounts from the repository exists."""

from __future__ import annotations

from pathlib import Path

import yaml

from authority_service.config import AuthoritySettings, load_authority_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def test_example_settings_load_and_document_every_section():
    settings = load_authority_settings(DEPLOY / "authority.example.yml")
    assert settings.server.host == "127.0.0.1" and settings.messages.cameras == ["cam-lobby-01"]
    text = (DEPLOY / "authority.example.yml").read_text()
    for section in AuthoritySettings.model_fields:
        assert f"\n{section}:" in text, f"{section} is not documented in the example"


def test_compose_authority_environment_is_valid_for_the_settings(monkeypatch):
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    authority = compose["services"]["authority"]
    for name, value in authority["environment"].items():
        monkeypatch.setenv(name, str(value))
    settings = load_authority_settings(DEPLOY / "authority.example.yml")
    assert settings.server.host == "0.0.0.0"
    assert settings.models.default_model_dir == Path("/opt/uunet/models/default")
    targets = {s if isinstance(s, str) else s["target"] for s in authority["secrets"]}
    assert {"jwt-signing-key", "camera-key-cam-lobby-01"} <= targets
    assert authority["build"]["dockerfile"] == "Dockerfile.authority"
    assert (REPO / "Dockerfile.authority").is_file()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not source.startswith("../"):
                assert (DEPLOY / source).exists(), source


def test_unit_file_reads_secrets_as_credentials_only():
    unit = (DEPLOY / "authority.service").read_text()
    assert "LoadCredential=jwt-signing-key:" in unit
    assert "UUNET_AUTHORITY_JWT_SECRET" not in unit  # never in the environment of the unit
    assert "ExecStart=/opt/uunet/venv/bin/uunet-authority serve" in unit
