"""Engine factory: the connection settings each database needs to be safe.

SQLite gets WAL (readers never block the writer), a busy timeout (a second
connection waits instead of failing with "database is locked"), foreign keys
(off by default in SQLite) and ``synchronous=NORMAL`` (durable enough under
WAL, much faster than FULL). PostgreSQL gets ``pool_pre_ping`` so a daemon
survives a server restart between checks.

``readonly=True`` is for commands that only read (``list``, ``history``,
``status``...): a SQLite database is opened with ``mode=ro`` and nothing is
written, not even its journal mode, so they work on a read-only data folder.
SQLite needs a WAL database's ``-shm`` file to read it; in a folder it cannot
write, with no ``-shm`` there (so no writer at work), it is opened ``immutable``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from watcher.errors import StoreError
from watcher.store.listing import readonly_options

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def engine_name(engine: Engine) -> str:
    """The engine's database for messages: its URL, password masked, and a
    read-only SQLite URI (see :func:`open_engine`) shown as the plain path."""
    url = engine.url
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database.startswith("file:") and url.query:
        return f"sqlite:///{unquote(database.removeprefix('file:'))}"
    return url.render_as_string(hide_password=True)


_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def error_detail(exc: BaseException) -> str:
    """One line for a user from a SQLAlchemy (or driver) error: the driver's
    message when there is one, its first line, without SQLAlchemy's
    "[SQL: ...]" dump and "Background on this error at: https://sqlalche.me/..."."""
    text = _BACKGROUND.sub("", str(getattr(exc, "orig", None) or exc)).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL; None for other databases and in-memory ones."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:") or parsed.query.get("uri"):
        return None  # a URI filename: the caller chose its own options
    return Path(database)


def open_engine(url: str, *, readonly: bool = False, **kwargs: Any) -> Engine:
    """Create an Engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    Extra keyword arguments go to :func:`sqlalchemy.create_engine`. A plain
    ``postgresql://`` URL is switched to the psycopg 3 driver, the one installed.
    ``readonly``: see the module's notes; a missing SQLite file is then a
    StoreError instead of a new, empty database.
    """
    # JSON columns as UTF-8 text, not \uXXXX escapes: a Chinese page's
    # metadata and change records take half the bytes (3 per character, not 6)
    kwargs.setdefault("json_serializer", _json_utf8)
    try:
        parsed = make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            path = sqlite_file(url) if readonly else None
            if path is not None:
                parsed = _readonly_sqlite(parsed, path)
            engine = create_engine(parsed, **kwargs)
            pragmas = _sqlite_readonly_pragmas if readonly else _sqlite_pragmas
            event.listen(engine, "connect", pragmas)
        else:
            kwargs.setdefault("pool_pre_ping", True)
            engine = create_engine(parsed, **kwargs)
    except (ArgumentError, SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open database {safe_url(url)}: {error_detail(exc)}") from exc
    log.debug("opened database %s", safe_url(url))
    return engine


def _json_utf8(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: escaped, as before
        return json.dumps(value)
    return text


def _readonly_sqlite(parsed: URL, path: Path) -> URL:
    """``parsed`` as a read-only URI filename (``file:…?mode=ro``)."""
    if not path.is_file():
        raise StoreError(
            f"no database at {path} yet: `watcher add URL` or `watcher db upgrade` creates it"
        )
    options = {**readonly_options(path), "uri": "true"}
    return parsed.set(database=f"file:{quote(str(path.resolve()))}").update_query_dict(options)


def _sqlite_readonly_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
