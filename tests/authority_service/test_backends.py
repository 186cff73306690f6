"""$UUNET_TEST_DATABASE (tests/authority_service/backends.py): the services the tests build run
on the backend it names, a database of their own per data directory; another name is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from authority_service.credentials import DATABASE_PASSWORD_ENV_VAR
from authority_service.service import build_services
from authority_service.users import Role
from tests.authority_service.backends import (
    DATABASES,
    TEST_DATABASE_ENV_VAR,
    URL_ENV_VAR,
    chosen_backend,
    open_database,
)
from tests.authority_service.conftest import SECRETS, settings_for


def test_chosen_backend_defaults_to_sqlite_and_refuses_another_name(monkeypatch):
    monkeypatch.delenv(TEST_DATABASE_ENV_VAR, raising=False)
    assert chosen_backend() == "sqlite"
    monkeypatch.setenv(TEST_DATABASE_ENV_VAR, "postgresql")
    assert chosen_backend() == "postgresql"
    monkeypatch.setenv(TEST_DATABASE_ENV_VAR, "mysql")
    with pytest.raises(ValueError, match=r"mysql.*run on sqlite or postgresql"):
        chosen_backend()


def test_settings_for_is_on_the_chosen_backend(tmp_path, models_dir):
    settings = settings_for(tmp_path, models_dir)
    assert settings.database_url.startswith(chosen_backend())


def test_switched_to_postgresql_each_data_directory_has_a_database_of_its_own(
    postgres, tmp_path, models_dir, monkeypatch
):
    monkeypatch.delenv(URL_ENV_VAR, raising=False)
    monkeypatch.setenv(DATABASE_PASSWORD_ENV_VAR, postgres.password)
    monkeypatch.setattr(DATABASES, "_server", postgres)
    monkeypatch.setattr(DATABASES, "_urls", {})
    first = settings_for(tmp_path / "a", models_dir)
    assert first.database_url.startswith(f"postgresql://postgres@127.0.0.1:{postgres.port}/")
    services = build_services(first, camera_keys=SECRETS.camera_keys)
    services.users.add("ivy", Role.investigator, "$argon2id$placeholder")
    services.close()
    again = settings_for(tmp_path / "a", models_dir)  # the same authority, restarted
    assert again.database_url == first.database_url
    restarted = build_services(again, camera_keys=SECRETS.camera_keys)
    assert restarted.users.get("ivy").role is Role.investigator
    restarted.close()
    other = settings_for(tmp_path / "b", models_dir)  # another authority: shares nothing
    assert other.database_url != first.database_url
    db = open_database(other)
    with db.read() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM users")).scalar_one() == 0
    db.close()
    assert not (tmp_path / "a" / "data" / "authority.sqlite3").exists()  # nothing in SQLite
