"""The deployment files agree with the code: the example settings load (also with the
overrides compose sets), and what compose mounts from the repository exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from authority_service.config import AuthoritySettings, load_authority_settings
from authority_service.users import Role
from shared.video_io import probe
from tests.authority_service.conftest import PASSWORD, wait_for_job

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
    assert settings.models.models_dir == Path("/opt/uunet/models")
    targets = {s if isinstance(s, str) else s["target"] for s in authority["secrets"]}
    assert {"jwt-signing-key", "camera-key-cam-lobby-01"} <= targets
    assert authority["build"]["dockerfile"] == "Dockerfile.authority"
    assert (REPO / "Dockerfile.authority").is_file()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not source.startswith("../"):
                assert (DEPLOY / source).exists(), source


def test_compose_workers_share_the_authoritys_queue_database_and_data_but_not_its_jwt_key(
    monkeypatch,
):
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    services = compose["services"]
    loaded = {}
    for name in ("authority", "worker-1", "worker-2"):
        with monkeypatch.context() as env:
            for key, value in services[name]["environment"].items():
                env.setenv(key, str(value))
            loaded[name] = load_authority_settings(DEPLOY / "authority.example.yml")
    api = loaded["authority"]
    assert api.jobs.queue == "celery" and api.jobs.broker_url == "redis://redis:6379/0"
    assert api.database_url.startswith("postgresql://uunet@postgres:5432/")
    for name in ("worker-1", "worker-2"):
        worker, spec = loaded[name], services[name]
        assert (worker.jobs, worker.database_url, worker.data_dir) == (
            api.jobs,
            api.database_url,
            api.data_dir,
        )
        assert spec["command"][0] == "worker"
        targets = {s if isinstance(s, str) else s["target"] for s in spec["secrets"]}
        assert targets == {"camera-key-cam-lobby-01", "database-password", "broker-password"}
        assert "authority-data:/var/lib/uunet-authority" in spec["volumes"]
    assert {"redis", "postgres"} <= services.keys()
    assert set(compose["secrets"]) >= {"database-password", "broker-password"}


def test_compose_s3_override_points_the_authority_and_workers_at_minio_keys_as_secrets(
    monkeypatch,
):
    base = yaml.safe_load((DEPLOY / "compose.yml").read_text())["services"]
    override = yaml.safe_load((DEPLOY / "compose.s3.yml").read_text())
    services = override["services"]
    makes_bucket = " ".join(services["minio-init"]["command"])
    for name in ("authority", "worker-1", "worker-2"):
        spec = services[name]
        environment = {**base[name]["environment"], **spec["environment"]}  # as compose merges
        with monkeypatch.context() as env:
            for key, value in environment.items():
                env.setenv(key, str(value))
            storage = load_authority_settings(DEPLOY / "authority.example.yml").storage
        assert storage.kind == "s3" and storage.s3 is not None
        assert storage.s3.endpoint_url == "http://minio:9000"
        assert f"mc mb --ignore-existing uunet/{storage.s3.bucket}" in makes_bucket
        assert set(spec["secrets"]) == {"s3-access-key-id", "s3-secret-access-key"}
        assert not [k for k in environment if "KEY" in k or "SECRET" in k]  # secrets only
        assert spec["build"]["args"]["EXTRAS"] == "authority,s3"
        assert spec["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    for name in ("minio", "minio-init"):  # MinIO's root account: the same two secrets
        sources = {s["source"]: s["target"] for s in services[name]["secrets"]}
        assert sources == {"s3-access-key-id": "access_key", "s3-secret-access-key": "secret_key"}
    assert services["minio"]["image"].startswith("minio/minio")
    assert {k: v["file"] for k, v in override["secrets"].items()} == {
        "s3-access-key-id": "./secrets/s3-access-key-id",
        "s3-secret-access-key": "./secrets/s3-secret-access-key",
    }
    assert "EXTRAS" in (REPO / "Dockerfile.authority").read_text()


def test_worker_unit_runs_the_worker_with_keys_but_no_jwt_key():
    unit = (DEPLOY / "authority-worker@.service").read_text()
    assert "ExecStart=/opt/uunet/venv/bin/uunet-authority worker" in unit
    assert "LoadCredential=camera-key-cam-lobby-01:" in unit
    assert "jwt-signing-key" not in unit


def test_unit_file_reads_secrets_as_credentials_only():
    unit = (DEPLOY / "authority.service").read_text()
    assert "LoadCredential=jwt-signing-key:" in unit
    assert "UUNET_AUTHORITY_JWT_SECRET" not in unit  # never in the environment of the unit
    assert "ExecStart=/opt/uunet/venv/bin/uunet-authority serve" in unit


def test_compose_mounts_each_side_only_its_own_package():
    """The edge gets the edge package (no ud.onnx), the authority the decoders and their
    DEFAULT; the edge runs the public-decoder demo model only because it is told to."""
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    services = compose["services"]

    def mounts(name: str) -> dict[str, str]:
        pairs = (v.split(":")[:2] for v in services[name]["volumes"] if v.startswith("../"))
        return {(DEPLOY / source).resolve(): target for source, target in pairs}

    edge, authority = mounts("edge"), mounts("authority")
    for source in edge:
        assert not list(source.rglob("ud.onnx")), f"the edge container gets a decoder: {source}"
    assert "--allow-public-decoder" in services["edge"]["command"]
    decoders = REPO / "models" / "weights" / "decoders"
    assert authority[decoders.resolve()] == "/opt/uunet/models"
    default_id = (decoders / "DEFAULT").read_text().strip()
    assert (decoders / default_id / "ud.onnx").is_file()
    for source in authority:
        assert not list(source.rglob("ue.onnx")), f"the authority container gets Ue: {source}"


def _investigation_commands() -> list[str]:
    """The shell commands of deploy/README.md's "An investigation, over HTTP" block, one per
    logical line (backslash continuations joined), without comments."""
    section = (DEPLOY / "README.md").read_text().split("### An investigation, over HTTP", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line for line in joined.splitlines() if line and not line.startswith("#")]


def _bash(script: str, cwd: Path, **env: str) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{script}\n{result.stderr}"
    return result.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_documented_http_investigation_runs_against_a_live_server(live, evidence_clip, tmp_path):
    """Each curl command of the README, as written, against a real server: the login sends the
    password exactly (a here-string's trailing newline made every login a 401)."""
    if live.services.users.get("alice") is None:
        live.services.users.add("alice", Role.investigator, live.services.passwords.hash(PASSWORD))
    commands = _investigation_commands()
    login = next(c for c in commands if c.startswith("TOKEN="))
    submit = next(c for c in commands if c.startswith("JOB="))
    status, result = (c for c in commands if c.startswith("curl ") and "$JOB" in c)
    assert "<<<" not in login and "printf %s" in login
    (tmp_path / "evidence").mkdir()
    shutil.copy(evidence_clip, tmp_path / "evidence" / "segment.mkv")
    submit = submit.replace("<segment>", "segment")
    out = _bash(
        f'{login}\n{submit}\nprintf "%s %s" "$TOKEN" "$JOB"',
        tmp_path,
        API=live.url,
        PASSWORD=PASSWORD,
    )
    token, job_id = out.split()
    headers = {"Authorization": f"Bearer {token}"}
    with live.client() as client:
        assert client.get("/v1/me", headers=headers).json()["name"] == "alice"
        assert wait_for_job(client, job_id, headers)["status"] == "succeeded"
    env = {"API": live.url, "TOKEN": token, "JOB": job_id}
    assert '"succeeded"' in _bash(status, tmp_path, **env)
    _bash(result, tmp_path, **env)
    assert probe(tmp_path / "restored.mp4").frames == 12


def test_compose_authority_is_in_the_group_the_edge_writes_its_evidence_with():
    """Evidence is 0640 in 0750 directories (never world-readable): the authority container
    reads the edge's volume through the edge user's group."""
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    dockerfile = (REPO / "Dockerfile.edge").read_text()
    group = re.search(r"groupadd --system --gid (\d+) uunet", dockerfile)
    user = re.search(r"useradd --system --uid \d+ --gid (\d+) ", dockerfile)
    assert group and user and group.group(1) == user.group(1)
    authority = compose["services"]["authority"]
    assert any(v.startswith("evidence:") for v in authority["volumes"])
    assert group.group(1) in [str(g) for g in authority["group_add"]]
