"""Which database the authority tests' services and servers use: ``$UUNET_TEST_DATABASE``.

* ``sqlite`` (the default): each data directory's own ``authority.sqlite3``, as an authority
  configured with no ``database.url`` keeps it.
* ``postgresql``: a fresh database on the session's throwaway PostgreSQL server
  (:mod:`tests.authority_service.postgres`) for each data directory, its password in
  ``$UUNET_AUTHORITY_DATABASE_PASSWORD`` as an operator gives it. The same data directory
  gets the same database (a restarted authority finds its records), another one another (two
  authorities share nothing).

:func:`~tests.authority_service.conftest.settings_for` (so ``server_factory``, ``servers``,
``live`` and the console's fixtures) and the tests that write a config file of their own ask
:func:`database_settings`. Tests about SQLite itself (adopting its file, WAL, the v1/v2
upgrades) keep SQLite and say so; the tests parametrized over both backends
(``database_target``, ``any_backend``, ``live``) run both whatever the switch says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import text

from authority_service.config import AuthoritySettings
from authority_service.credentials import DATABASE_PASSWORD_ENV_VAR, load_database_password
from authority_service.db import Database
from tests.authority_service.postgres import PostgresServer

#: ``sqlite`` (default) or ``postgresql``.
TEST_DATABASE_ENV_VAR = "UUNET_TEST_DATABASE"
BACKENDS = ("sqlite", "postgresql")
#: Set by a test (``any_backend``) that chose its database through the environment.
URL_ENV_VAR = "UUNET_AUTHORITY_DATABASE__URL"


def chosen_backend() -> str:
    """The backend ``$UUNET_TEST_DATABASE`` names (``sqlite`` when unset).

    Raises:
        ValueError: it names another one (the message lists the allowed values).
    """
    chosen = os.environ.get(TEST_DATABASE_ENV_VAR, "sqlite")
    if chosen not in BACKENDS:
        raise ValueError(
            f"${TEST_DATABASE_ENV_VAR}={chosen!r}: the authority tests run on "
            + " or ".join(BACKENDS)
        )
    return chosen


class DatabasePerDataDir:
    """One PostgreSQL database per data directory, made on first use (none before
    :meth:`use` is given a server: SQLite)."""

    def __init__(self) -> None:
        self._server: PostgresServer | None = None
        self._urls: dict[Path, str] = {}

    def use(self, server: PostgresServer | None) -> None:
        self._server = server
        self._urls.clear()

    def url_for(self, data_dir: Path) -> str | None:
        """The URL of ``data_dir``'s database, or ``None`` (its SQLite file)."""
        if self._server is None:
            return None
        key = Path(data_dir).resolve()
        if key not in self._urls:
            self._urls[key] = self._server.new_database()
        return self._urls[key]


DATABASES = DatabasePerDataDir()


def database_settings(data_dir: str | Path) -> dict[str, Any]:
    """The ``database`` section for an authority whose data directory is ``data_dir`` (``{}``:
    the SQLite default, or the database the test set in ``$UUNET_AUTHORITY_DATABASE__URL``)."""
    if os.environ.get(URL_ENV_VAR):
        return {}
    url = DATABASES.url_for(Path(data_dir))
    return {"database": {"url": url}} if url else {}


def sqlite_database(data_dir: str | Path) -> dict[str, Any]:
    """The ``database`` section of a test that needs SQLite: the data directory's file."""
    return {"database": {"url": f"sqlite:///{Path(data_dir) / 'authority.sqlite3'}"}}


def password_env(settings: AuthoritySettings) -> dict[str, str]:
    """What a process started on ``settings`` with an environment of its own needs to reach a
    PostgreSQL database: the password variable this process holds (``{}`` on SQLite)."""
    password = os.environ.get(DATABASE_PASSWORD_ENV_VAR)
    if password and settings.database_url.startswith("postgresql"):
        return {DATABASE_PASSWORD_ENV_VAR: password}
    return {}


def open_database(settings: AuthoritySettings) -> Database:
    """The database of ``settings``, as the authority opens it (the password as it reads it)."""
    return Database(settings.database_url, password=load_database_password(settings))


def audit_rows(settings: AuthoritySettings) -> list[dict[str, Any]]:
    """The audit table of ``settings``' database as stored, row by row in ``seq`` order."""
    db = open_database(settings)
    try:
        with db.read() as conn:
            result = conn.execute(text("SELECT * FROM audit_log ORDER BY seq"))
            return [dict(row) for row in result.mappings()]
    finally:
        db.close()
