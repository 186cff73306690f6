"""uunet-authority: users (password never from argv), audit verify, audited local reconstruct."""

from __future__ import annotations

import getpass
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from authority_service.cli import run
from authority_service.config import AuthoritySettings, load_authority_settings
from authority_service.credentials import JWT_SECRET_ENV_VAR, camera_key_env_var
from authority_service.users import SqlUserStore
from shared.geometry import crop
from shared.video_io import LosslessWriter, read_frames
from tests.authority_service.backends import audit_rows, database_settings, open_database
from tests.authority_service.conftest import (
    CAMERA_ID,
    CAMERA_KEY,
    JWT_KEY,
    SYNTHETIC_BOXES,
)
from tests.authority_service.edge_role import deidentify_clip, synthetic_frames
from tests.authority_service.tamper import Raw, rechain
from tests.toy_models import TOY_MODEL_ID

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path, models_dir, monkeypatch) -> Path:
    monkeypatch.setenv(camera_key_env_var(CAMERA_ID), CAMERA_KEY.decode())
    monkeypatch.delenv(JWT_SECRET_ENV_VAR, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("SUDO_USER", raising=False)
    path = tmp_path / "authority.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "models": {
                    "models_dir": str(models_dir),
                    "providers": "cpu",
                    "shipped_default": False,
                },
                "messages": {"cameras": [CAMERA_ID]},
                "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192},
                "log_level": "WARNING",
                **database_settings(tmp_path / "data"),
            }
        )
    )
    return path


def _cli(config: Path, *args: str, stdin: str = "", env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "authority_service", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def cli(config: Path, *args: str) -> int:
    """Run the command line in this process (fast); ``_cli`` runs a real process."""
    return run(["--config", str(config), *args])


def _settings(config: Path) -> AuthoritySettings:
    return load_authority_settings(config)


def _records(config: Path):
    return audit_rows(_settings(config))


def test_user_add_reads_the_password_from_stdin_in_a_real_process(config):
    done = _cli(config, "user", "add", "ivy", "--role", "investigator", stdin="a long passphrase\n")
    assert done.returncode == 0, done.stderr
    assert "user ivy added as investigator" in done.stdout
    store = SqlUserStore(open_database(_settings(config)))
    user = store.get("ivy")
    assert user.password_hash.startswith("$argon2id$")
    record = _records(config)[-1]
    assert record["actor"] == f"os:{getpass.getuser()}" and record["action"] == "user_add"


def test_user_add_from_env_then_list_disable_and_refusals(config, monkeypatch, capsys):
    monkeypatch.setenv("NEW_PW", "another long passphrase")
    assert (
        cli(config, "user", "add", "audrey", "--role", "auditor", "--password-env", "NEW_PW") == 0
    )
    assert cli(config, "user", "disable", "audrey") == 0
    assert cli(config, "user", "list") == 0
    assert "audrey\tauditor\tdisabled" in capsys.readouterr().out
    monkeypatch.setenv("SHORT_PW", "short")
    assert cli(config, "user", "add", "bob", "--role", "admin", "--password-env", "SHORT_PW") == 1
    assert cli(config, "user", "add", "bob", "--role", "admin", "--password-env", "UNSET_X") == 2
    with pytest.raises(SystemExit):  # there is no way to pass the password itself in argv
        cli(config, "user", "add", "bob", "--role", "admin", "--password", "in-argv-please-no")


def test_user_add_approver_then_set_role_keep_the_admin_protections(config, monkeypatch, capsys):
    monkeypatch.setenv("NEW_PW", "another long passphrase")
    assert (
        cli(config, "user", "add", "april", "--role", "approver", "--password-env", "NEW_PW") == 0
    )
    assert cli(config, "user", "add", "adam", "--role", "admin", "--password-env", "NEW_PW") == 0
    assert cli(config, "user", "set-role", "adam", "approver") == 1  # the last admin: refused
    assert cli(config, "user", "list") == 0
    out = capsys.readouterr().out
    assert "april\tapprover\tactive" in out and "adam\tadmin\tactive" in out
    assert _records(config)[-1]["detail"] == "user adam added as admin"  # no role change


def test_audit_verify_exit_codes_follow_the_chain(config, monkeypatch, capsys):
    monkeypatch.setenv("PW", "yet another passphrase")
    for name in ("u1", "u2", "u3"):
        assert cli(config, "user", "add", name, "--role", "auditor", "--password-env", "PW") == 0
    capsys.readouterr()
    assert cli(config, "audit", "verify") == 0
    assert "audit chain valid" in capsys.readouterr().out
    raw = Raw(open_database(_settings(config)))  # the guards dropped
    raw.execute("DELETE FROM audit_log WHERE seq = 2")
    raw.close()
    assert cli(config, "audit", "verify") == 1
    out = capsys.readouterr().out
    assert "AUDIT CHAIN BROKEN" in out and "record 3: sequence gap" in out


def test_audit_verify_checks_heads_kept_off_the_host(config, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PW", "yet another passphrase")
    for name in ("u1", "u2", "u3", "u4"):
        assert cli(config, "user", "add", name, "--role", "auditor", "--password-env", "PW") == 0
    data_dir = Path(yaml.safe_load(config.read_text())["data_dir"])
    off_host = tmp_path / "off-host-journal.jsonl"
    off_host.write_text((data_dir / "audit-head.journal.jsonl").read_text())
    head = json.loads((data_dir / "audit-head.json").read_text())
    expect = f"{head['seq']}:{head['hash']}"
    assert cli(config, "audit", "verify", "--anchor", str(off_host), "--expect-head", expect) == 0
    out = capsys.readouterr().out
    assert "9 journaled or expected heads checked" in out and "audit chain valid" in out  # 4+4+1
    # Whoever holds the host rewrites record 2 and, consistently, the chain and both files.
    raw = Raw(open_database(_settings(config)))  # the guards dropped
    raw.execute("UPDATE audit_log SET outcome = 'refused' WHERE seq = 2")
    rechain(raw, 2)
    raw.close()
    for name in ("audit-head.json", "audit-head.journal.jsonl"):
        (data_dir / name).unlink()
    assert cli(config, "user", "disable", "u1") == 0  # removing the files does not re-anchor
    capsys.readouterr()
    assert cli(config, "audit", "verify") == 1
    assert "anchor file" in capsys.readouterr().out
    assert cli(config, "audit", "reanchor") == 0  # what an operator does after investigating
    assert "re-anchored at #" in capsys.readouterr().out
    assert cli(config, "audit", "reanchor") == 2  # the new files are there: move them first
    capsys.readouterr()
    assert cli(config, "audit", "verify") == 0  # nothing on the host can tell
    assert cli(config, "audit", "verify", "--expect-head", expect) == 1
    out = capsys.readouterr().out
    assert "AUDIT CHAIN BROKEN" in out and f"record {head['seq']}: 1 of 1 heads expected" in out
    assert cli(config, "audit", "verify", "--anchor", str(off_host)) == 1
    assert "3 of 4 heads expected" in capsys.readouterr().out  # records 2, 3 and 4 changed
    assert cli(config, "audit", "verify", "--expect-head", "4-abc") == 2
    assert "SEQ:HASH" in capsys.readouterr().err


REASON = ("--case-id", "CASE-7", "--justification", "Local review requested by court order.")


def test_reconstruct_writes_the_clip_and_audits_the_os_user(
    config, evidence_clip, tmp_path, capsys
):
    out = tmp_path / "restored.mkv"
    assert cli(config, "reconstruct", str(evidence_clip), "--out", str(out), *REASON) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified_frames"] == 12 and report["faces"] == 38  # tags checked with the key
    frames = [f.rgb for f in read_frames(out)]
    box = SYNTHETIC_BOXES[0]
    np.testing.assert_array_equal(crop(frames[0], box), crop(synthetic_frames(12)[0], box))
    start, end = _records(config)[-2:]
    assert start["actor"] == end["actor"] == f"os:{getpass.getuser()}"
    assert (start["outcome"], end["outcome"]) == ("granted", "completed")
    assert end["case_id"] == "CASE-7" and end["frames"] == 12 and end["model_ids"] == TOY_MODEL_ID


def test_reconstruct_through_sudo_records_the_caller(config, evidence_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "alice-operator")
    out = tmp_path / "restored.mp4"
    assert cli(config, "reconstruct", str(evidence_clip), "--out", str(out), *REASON) == 0
    assert _records(config)[-1]["actor"] == f"os:alice-operator (as {getpass.getuser()})"


def test_reconstruct_refuses_forged_clip_and_leaves_no_output(config, evidence_clip, tmp_path):
    frames = [f.rgb for f in read_frames(evidence_clip)]
    frames[2][5, 5] ^= 0x10
    forged = tmp_path / "forged.mkv"
    with LosslessWriter(forged, 320, 240, 15) as writer:
        for frame in frames:
            writer.write(frame)
    out = tmp_path / "restored.mkv"
    assert cli(config, "reconstruct", str(forged), "--out", str(out), *REASON) == 1
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))
    assert _records(config)[-1]["outcome"] == "refused"


def test_reconstruct_paper_format_needs_a_model(config, models_dir, tmp_path, monkeypatch):
    clip = deidentify_clip(
        synthetic_frames(2),
        lambda i, f: [SYNTHETIC_BOXES[0]],
        models_dir / TOY_MODEL_ID,
        tmp_path / "paper.mkv",
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
        message_format="paper",
    )
    out = tmp_path / "restored.mp4"
    base = ("reconstruct", str(clip), "--out", str(out), *REASON)
    assert cli(config, *base) == 1  # a paper message is unsigned: refused by default
    assert "unauthenticated_message" in _records(config)[-1]["detail"]
    monkeypatch.setenv("UUNET_AUTHORITY_MESSAGES__REQUIRE_AUTHENTICATION", "false")
    assert cli(config, *base) == 1  # no default model configured, the shipped one off
    assert "no_default_model" in _records(config)[-1]["detail"]
    assert cli(config, *base, "--model", str(models_dir / TOY_MODEL_ID)) == 0
    assert out.is_file() and len(list(read_frames(out))) == 2


def test_validate_config_and_serve_refuse_missing_or_weak_secret(config, monkeypatch, capsys):
    assert cli(config, "validate-config") == 2
    assert "refuses to start without a JWT signing key" in capsys.readouterr().err
    assert cli(config, "serve") == 2
    monkeypatch.setenv(JWT_SECRET_ENV_VAR, "changeme")
    assert cli(config, "serve") == 2
    assert "at least 32" in capsys.readouterr().err
    monkeypatch.setenv(JWT_SECRET_ENV_VAR, JWT_KEY.decode())
    assert cli(config, "validate-config") == 0
    monkeypatch.delenv(camera_key_env_var(CAMERA_ID))
    assert cli(config, "validate-config") == 2
    assert "camera-key-cam-lobby-01" in capsys.readouterr().err


def test_a_clip_name_with_a_newline_is_logged_on_one_line_by_a_real_process(config, tmp_path):
    clip = tmp_path / "x\n2024-05-01 10:00:00,000 INFO forged: all clear.mkv"
    clip.write_bytes(b"not a video")
    out = tmp_path / "restored.mkv"
    done = _cli(
        config,
        "reconstruct",
        str(clip),
        "--out",
        str(out),
        *REASON,
        env={"UUNET_AUTHORITY_LOG_LEVEL": "INFO"},
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    granted = [line for line in lines if "reconstruct_clip_cli granted" in line]
    assert len(granted) == 1 and "x\\n2024-05-01" in granted[0]
    assert not any(line.startswith("2024-05-01") for line in lines), done.stderr


@pytest.mark.slow
def test_reconstruct_with_workers_reverses_in_segments_what_one_pass_gives(
    config, models_dir, tmp_path, monkeypatch, capsys, caplog
):
    clip = deidentify_clip(
        synthetic_frames(40, 160, 120),
        lambda i, f: [SYNTHETIC_BOXES[0]],
        models_dir / TOY_MODEL_ID,
        tmp_path / "long.mkv",
        camera_id=CAMERA_ID,
        key=CAMERA_KEY,
    )
    monkeypatch.setenv("UUNET_AUTHORITY_JOBS__SEGMENT_FRAMES", "16")
    caplog.set_level(logging.INFO, logger="authority_service.parallel")
    segmented, one = tmp_path / "segmented.mp4", tmp_path / "one.mp4"
    assert (
        cli(config, "reconstruct", str(clip), "--out", str(segmented), "--workers", "2", *REASON)
        == 0
    )
    assert "40 frames in 3 segments, 2 worker processes" in caplog.text
    report = json.loads(capsys.readouterr().out)
    assert cli(config, "reconstruct", str(clip), "--out", str(one), *REASON) == 0  # default: 1
    expected = json.loads(capsys.readouterr().out)
    assert report.pop("seconds") > 0 and expected.pop("seconds") > 0
    assert report == expected and report["faces"] == 40
    for a, b in zip(read_frames(segmented), read_frames(one), strict=True):
        np.testing.assert_array_equal(a.rgb, b.rgb)
    assert cli(config, "reconstruct", str(clip), "--out", str(one), "--workers", "0", *REASON) == 2
