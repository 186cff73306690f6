"""Alembic's environment: migrate the connection :mod:`authority_service.migrate` hands over.

There is no ``alembic.ini``: the authority runs its migrations itself at start-up, inside its
own transaction (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL).
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the authority's migrations run when it opens its database (authority_service.migrate), "
        "not through the alembic command"
    )
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
