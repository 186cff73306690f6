"""The authority's database: users, the audit log and the job table, behind SQLAlchemy.

Two backends, chosen by ``database.url`` (:class:`~authority_service.config.DatabaseSettings`):

* **SQLite** (the default, ``DATA_DIR/authority.sqlite3``): one file, 0600 in a 0700 directory;
  WAL journal so readers never block the writer, ``synchronous = FULL``, a 30 s busy timeout so
  the CLI and the server can write the same file, and ``BEGIN IMMEDIATE`` for every write
  transaction, so a read-then-write sequence (the audit chain's append) cannot interleave with
  another writer, thread or process.
* **PostgreSQL** (``postgresql://user@host:port/dbname``, driver psycopg 3): the password is a
  secret, never in the URL (:func:`~authority_service.credentials.load_database_password`). A write
  transaction that reads then writes names the table it must own meanwhile (``lock``): it is
  locked ``SHARE ROW EXCLUSIVE``, which serializes such writers (and any other insert or
  update of the table) while plain reads go on.

PostgreSQL's text cannot hold U+0000 (NUL), SQLite's can: on both backends every text a
statement writes or looks up holds :data:`NUL_STANDIN` (U+2400, SYMBOL FOR NULL) instead
(:func:`storable_text`), so a NUL in a refused request's justification or in a search is
recorded, or finds nothing, the same way on either, never a database error.

Opening a database migrates it to this code's schema, or refuses it when it is newer
(:mod:`authority_service.migrate`). The audit table is append-only at the database level:
triggers abort any ``UPDATE`` or ``DELETE`` (and ``TRUNCATE`` on PostgreSQL). Someone able to
drop them (write access to the file, the owner of the table) can still edit it; the hash chain
(:mod:`authority_service.audit`) is what detects that.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from authority_service.migrate import SCHEMA_VERSION, SchemaTooNewError, upgrade
from authority_service.schema import metadata
from shared.private_files import create_private_file, private_dir

__all__ = [
    "NUL_STANDIN",
    "SCHEMA_VERSION",
    "Database",
    "DatabaseError",
    "parse_database_url",
    "storable_text",
]

log = logging.getLogger(__name__)

#: How long a SQLite writer waits for another one (seconds).
SQLITE_BUSY_TIMEOUT_S = 30.0
_POSTGRESQL_DRIVER = "postgresql+psycopg"
#: What a stored text holds instead of U+0000, which PostgreSQL's text cannot hold.
NUL_STANDIN = "\u2400"


class DatabaseError(RuntimeError):
    """The database cannot be opened, or has a schema this code does not know."""


def parse_database_url(url: str) -> URL:
    """``url`` as SQLAlchemy's URL: ``sqlite:///PATH`` (a file) or ``postgresql://...``
    (``postgresql+psycopg://`` too), without a password.

    Raises:
        ValueError: another backend or driver, an in-memory SQLite database, or a password in
            the URL (it is a secret: ``$CREDENTIALS_DIRECTORY/database-password``).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {exc}") from exc
    if parsed.password is not None:
        raise ValueError(
            "the database URL must not hold a password: give it as the credential "
            "database-password (or $UUNET_AUTHORITY_DATABASE_PASSWORD)"
        )
    if parsed.drivername in ("postgresql", _POSTGRESQL_DRIVER):
        return parsed.set(drivername=_POSTGRESQL_DRIVER)
    if parsed.drivername == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError("a SQLite database URL must name a file: sqlite:///PATH")
        return parsed
    raise ValueError(
        f"database backend {parsed.drivername!r} is not supported: sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DBNAME"
    )


def storable_text(value: str) -> str:
    """``value`` as the database holds it: each NUL as :data:`NUL_STANDIN`."""
    return value.replace("\x00", NUL_STANDIN)


def _storable(parameters: Any) -> Any:
    """A statement's parameters (a mapping, a sequence, or a list of either) with every text
    :func:`storable_text`."""
    if isinstance(parameters, str):
        return storable_text(parameters) if "\x00" in parameters else parameters
    if isinstance(parameters, Mapping):
        return {key: _storable(value) for key, value in parameters.items()}
    if isinstance(parameters, (list, tuple)):
        return type(parameters)(_storable(value) for value in parameters)
    return parameters


def _store_nul_as_standin(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _before(
        _conn: Connection,
        _cursor: object,
        statement: str,
        parameters: Any,
        _context: object,
        _executemany: bool,
    ) -> tuple[str, Any]:
        return statement, _storable(parameters)


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        pool_size=8,
        max_overflow=32,
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: object) -> None:
        # The driver's own transaction handling off: "begin" below issues BEGIN itself.
        dbapi_connection.isolation_level = None
        for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("uunet_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The authority's database at ``url`` (a :class:`~pathlib.Path`: a SQLite file), migrated
    to this code's schema; ``password`` for PostgreSQL.

    Raises:
        DatabaseError: it cannot be opened, created or migrated, or its schema is newer.
    """

    def __init__(self, url: str | Path, *, password: str | None = None) -> None:
        if isinstance(url, Path):
            url = f"sqlite:///{url}"
        try:
            self.url = parse_database_url(url)
        except ValueError as exc:
            raise DatabaseError(str(exc)) from exc
        self.backend = self.url.get_backend_name()
        #: The SQLite file (``None`` on PostgreSQL).
        self.path = Path(str(self.url.database)) if self.backend == "sqlite" else None
        self.label = str(self.path) if self.path else self.url.render_as_string()
        try:
            if self.path is not None:
                # Password hashes live here: 0600 in a 0700 directory (SQLite gives its -wal
                # and -shm files the database file's mode).
                private_dir(self.path.parent)
                create_private_file(self.path)
                self.engine = _sqlite_engine(self.url)
            else:
                connect = self.url.set(password=password) if password else self.url
                self.engine = create_engine(connect, pool_pre_ping=True)
            _store_nul_as_standin(self.engine)
            with self.transaction() as conn:
                upgrade(conn, self.label)
        except SchemaTooNewError as exc:
            self.close()
            raise DatabaseError(str(exc)) from exc
        except (SQLAlchemyError, OSError) as exc:
            self.close()
            raise DatabaseError(f"cannot open database {self.label}: {exc}") from exc

    @contextmanager
    def transaction(self, *, lock: str | None = None) -> Iterator[Connection]:
        """A write transaction, committed on success and rolled back on error.

        On SQLite it holds the write lock from the start (``BEGIN IMMEDIATE``); on PostgreSQL
        the table ``lock`` (one of :mod:`.schema`'s) is locked first, so that a read of it then
        a write cannot interleave with another writer's.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database refused a statement or the commit.
        """
        with self.engine.connect() as conn:
            conn.execution_options(uunet_write=True)
            with conn.begin():
                if lock is not None and self.backend == "postgresql":
                    table = metadata.tables[lock]  # KeyError: not a table of ours
                    name = conn.dialect.identifier_preparer.format_table(table)
                    conn.execute(text(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE"))
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection to read with (its transaction is rolled back at the end).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: a query failed.
        """
        with self.engine.connect() as conn:
            yield conn

    def ping(self) -> bool:
        """Whether a trivial query succeeds (for ``/healthz``)."""
        try:
            with self.read() as conn:
                conn.execute(text("SELECT 1")).scalar_one()
        except SQLAlchemyError as exc:
            log.warning("database ping failed: %s", exc)
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection (a later use opens new ones)."""
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.dispose()
