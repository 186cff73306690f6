"""One module per schema revision (loaded by Alembic from its file, not imported)."""
