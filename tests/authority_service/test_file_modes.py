"""Nothing the authority writes is readable by other users, whatever the umask: the database
(password hashes), the audit anchor and journal, uploads and reconstructed clips."""

from __future__ import annotations

from tests.authority_service.backends import sqlite_database
from tests.authority_service.conftest import reason, wait_for_job
from tests.file_modes import modes_under, umask


def test_data_dir_is_owner_only_under_umask_022_after_a_reconstruction(
    server_factory, evidence_clip, tmp_path
):
    with umask(0o022):
        # The SQLite file and its -wal and -shm (password hashes) are among what is checked:
        # SQLite whatever $UUNET_TEST_DATABASE says.
        live = server_factory(**sqlite_database(tmp_path / "data"))
        headers = live.auth("ivy")  # a login: an audit record, so the anchor is written
        with live.client() as client:
            accepted = client.post(
                "/v1/reconstructions",
                files={"clip": ("clip.mkv", evidence_clip.read_bytes(), "video/x-matroska")},
                data=reason(),
                headers=headers,
            )
            job = wait_for_job(client, accepted.json()["id"], headers)
        assert job["status"] == "succeeded", job
        modes = modes_under(tmp_path / "data")  # while serving: SQLite's -wal and -shm too
        live.stop()
    for name in ("authority.sqlite3", "authority.sqlite3-wal", "audit-head.json", "results"):
        assert name in modes, sorted(modes)
    assert [n for n in modes if n.startswith("results/") and n.endswith(".mp4")]
    dirs = {n: m for n, m in modes.items() if (tmp_path / "data" / n).is_dir()}
    files = {n: m for n, m in modes.items() if n not in dirs}
    assert set(dirs.values()) == {0o700}, dirs
    assert set(files.values()) == {0o600}, files
