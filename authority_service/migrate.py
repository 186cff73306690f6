"""Bring the authority's database to the schema of this code (Alembic), or refuse it.

Run by :class:`~authority_service.db.Database` each time it opens a database (so at every
start of the service and of each CLI command), inside one transaction: ``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL, so a second process opening the same database at once
waits, then finds nothing left to do.

* A new database gets every revision (:mod:`authority_service.migrations`).
* A SQLite file made before Alembic carries its schema version in ``PRAGMA user_version`` (1 or
  2): it is adopted in place (revision ``0001`` adds any table it lacks, then the file is
  stamped with the revision of its version) and upgraded from there.
* A database of a revision this code does not know (made by a newer uunet) is refused, as is a
  SQLite file whose ``user_version`` is newer. Schema changes are never undone.

On SQLite ``user_version`` keeps following the schema version (revision ``NNNN`` is version N),
so an older uunet from before Alembic refuses a file that a newer one changed.
"""

from __future__ import annotations

import logging
import threading

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

__all__ = ["SCHEMA_VERSION", "SchemaTooNewError", "current_revision", "upgrade"]

log = logging.getLogger(__name__)
# Alembic says at INFO which implementation it uses each time a database opens (every CLI
# command); what changed is logged here instead.
logging.getLogger("alembic").setLevel(logging.WARNING)

_SCRIPTS = "authority_service:migrations"
#: Any constant: the key of the PostgreSQL advisory lock that serializes migrations.
_MIGRATION_LOCK = 0x75756E6574  # "uunet"
#: Alembic keeps the migration being run in module globals (``alembic.op``, ``context``): one
#: thread of a process at a time runs it, whatever database it migrates.
_ALEMBIC = threading.Lock()


class SchemaTooNewError(RuntimeError):
    """The database was changed by a newer version of uunet than this one."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPTS)
    config.attributes["connection"] = connection
    return config


_SCRIPT_DIRECTORY = ScriptDirectory.from_config(_config())
_HEAD = _SCRIPT_DIRECTORY.get_current_head()
assert _HEAD is not None
_KNOWN = frozenset(script.revision for script in _SCRIPT_DIRECTORY.walk_revisions())
#: The schema version of this code (revision ``NNNN`` is version N).
SCHEMA_VERSION = int(_HEAD)


def _revision_of(version: int) -> str:
    return f"{version:04d}"


def current_revision(connection: Connection) -> str | None:
    """The database's Alembic revision (``None``: none recorded yet)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, label: str) -> None:
    """Migrate the database of ``connection`` (in a transaction the caller commits) to this
    code's schema; ``label`` names it in messages (a path, a URL without its password).

    Raises:
        SchemaTooNewError: the database is of a newer schema than this code's.
        sqlalchemy.exc.SQLAlchemyError: a migration failed (nothing of it is committed).
    """
    sqlite = connection.dialect.name == "sqlite"
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    legacy = connection.execute(text("PRAGMA user_version")).scalar_one() if sqlite else 0
    current = current_revision(connection)
    if legacy > SCHEMA_VERSION or (current is not None and current not in _KNOWN):
        found = current if current is not None and current not in _KNOWN else legacy
        raise SchemaTooNewError(
            f"{label}: schema version {found} is newer than this code's {SCHEMA_VERSION}; "
            "upgrade uunet"
        )
    config = _config(connection)
    if current is None and legacy:
        # A file made before Alembic: the tables of its version are there (or some of them).
        with _ALEMBIC:
            command.upgrade(config, _revision_of(1))
            command.stamp(config, _revision_of(legacy))
        current = _revision_of(legacy)
        log.info("%s: schema version %d adopted by the migrations", label, legacy)
    if current != _HEAD:
        with _ALEMBIC:
            command.upgrade(config, "head")
        if current is None:
            log.info("%s: schema version %d created", label, SCHEMA_VERSION)
        else:
            log.info(
                "%s: schema migrated from version %d to %d", label, int(current), SCHEMA_VERSION
            )
    if sqlite:
        connection.execute(text(f"PRAGMA user_version = {SCHEMA_VERSION}"))
