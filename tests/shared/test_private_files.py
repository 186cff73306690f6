"""shared.private_files: owner-only files and directories whatever the umask."""

from __future__ import annotations

import logging
import os

import pytest

from shared.private_files import (
    GROUP_DIR_MODE,
    create_private_file,
    open_private,
    private_dir,
)
from tests.file_modes import mode, umask


def test_private_dir_creates_missing_parents_and_the_leaf_0700_under_umask_022(tmp_path):
    with umask(0o022):
        leaf = private_dir(tmp_path / "a" / "b")
        assert private_dir(leaf) == leaf  # exists: fine
        group = private_dir(tmp_path / "g", GROUP_DIR_MODE)
    assert mode(leaf) == 0o700 and mode(group) == 0o750
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        private_dir(tmp_path / "file")


def test_create_private_file_is_0600_and_keeps_an_existing_file(tmp_path, caplog):
    with umask(0o022):
        path = create_private_file(tmp_path / "db")
        assert mode(path) == 0o600 and path.read_bytes() == b""
        path.write_bytes(b"data")
        create_private_file(path)
        assert path.read_bytes() == b"data"
        wide = tmp_path / "wide"
        wide.write_text("x")  # 0644 under this umask
        with caplog.at_level(logging.WARNING, logger="shared.private_files"):
            create_private_file(wide)
    assert mode(wide) == 0o644 and "readable beyond its owner's 0600" in caplog.text


def test_open_private_creates_0600_and_narrows_an_existing_file(tmp_path):
    with umask(0o022):
        with open_private(tmp_path / "new.json", "w", encoding="utf-8") as handle:
            handle.write("{}")
        old = tmp_path / "old.tmp"
        old.write_text("stale")
        os.chmod(old, 0o666)
        with open_private(old, "ab") as handle:
            handle.write(b"+")
    assert mode(tmp_path / "new.json") == 0o600 and (tmp_path / "new.json").read_text() == "{}"
    assert mode(old) == 0o600 and old.read_text() == "stale+"
    with pytest.raises(ValueError, match="writes files"):
        open_private(tmp_path / "new.json", "r")
