"""Alembic migrations of the authority's database (run by :mod:`authority_service.migrate`).

``versions/NNNN_*.py``: revision ``NNNN`` is schema version N (``0001`` is the schema before
Alembic's version 1, ``0002`` its version 2). A new change is a new file whose
``down_revision`` is the previous head; its tables are written out as they are in that
version, never imported from :mod:`authority_service.schema` (which follows the latest).
"""
