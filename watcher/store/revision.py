"""The schema revision this watcher's code is written for.

Kept apart from :mod:`watcher.store.schema` (Alembic, SQLAlchemy) so that a
command reading through the driver alone (:mod:`watcher.store.listing`) can
tell a database it understands without importing either.
"""

from __future__ import annotations

#: The newest migration script's revision (a test holds the two together).
HEAD = "0007"
