"""Engine factory: the connection settings each database needs to be safe.

SQLite gets WAL (readers never block the writer), a busy timeout (a second
connection waits instead of failing with "database is locked"), foreign keys
(off by default in SQLite) and ``synchronous=NORMAL`` (durable enough under
WAL, much faster than FULL). PostgreSQL gets ``pool_pre_ping`` so a daemon
survives a server restart between checks.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from watcher.errors import StoreError

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def open_engine(url: str, **kwargs: Any) -> Engine:
    """Create an Engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    Extra keyword arguments go to :func:`sqlalchemy.create_engine`. A plain
    ``postgresql://`` URL is switched to the psycopg 3 driver, the one installed.
    """
    try:
        parsed = make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            engine = create_engine(parsed, **kwargs)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            kwargs.setdefault("pool_pre_ping", True)
            engine = create_engine(parsed, **kwargs)
    except (ArgumentError, SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open database {safe_url(url)}: {exc}") from exc
    log.debug("opened database %s", safe_url(url))
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
