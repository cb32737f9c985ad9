"""``watcher list`` read through the database driver alone.

Importing SQLAlchemy costs a command more start-up than listing 10,000
watches takes (0.2-0.5 s on a 2-core machine), so ``watcher list`` reads its
one query with sqlite3 or psycopg directly when it can: a plain
``sqlite:///path`` or ``postgresql://`` URL, at this watcher's schema
(:data:`~watcher.store.revision.HEAD`). Anything else (another URL form or
schema, a database that cannot be read) answers None, and the command takes
the ordinary path through the Store, which explains any problem. A test holds
the rows equal to :meth:`Repository.list_watches` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from watcher.store.records import WatchState, WatchSummary
from watcher.store.revision import HEAD

#: How long a read waits for a writer's lock, as the Store's engine waits.
SQLITE_BUSY_TIMEOUT_S = 10.0

_SQLITE = "sqlite:///"
_POSTGRESQL = ("postgresql://", "postgresql+psycopg://", "postgres://")

#: Repository.list_watches' query, written out: every watch, its version count
#: and latest title, oldest watch first.
QUERY = """
SELECT w.id, w.url, w.site, w.state, w.interval_s, w.tags, w.next_check_at,
       w.last_checked_at, w.last_change_at, w.failure_count, COALESCE(n.versions, 0),
       (SELECT v.title FROM versions v WHERE v.watch_id = w.id ORDER BY v.seq DESC LIMIT 1),
       w.last_error, w.source_meta
FROM watches w
LEFT JOIN (SELECT watch_id, COUNT(*) AS versions FROM versions GROUP BY watch_id) n
  ON n.watch_id = w.id
ORDER BY w.id
"""


def list_watches(database_url: str) -> list[WatchSummary] | None:
    """Every watch, as :meth:`Repository.list_watches` gives it, or None when
    this database is one to read the ordinary way."""
    if database_url.startswith(_SQLITE):
        return _sqlite(database_url.removeprefix(_SQLITE))
    if database_url.startswith(_POSTGRESQL):
        return _postgresql("postgresql://" + database_url.split("://", 1)[1])
    return None


def readonly_options(path: Path) -> dict[str, str]:
    """URI options that open the SQLite file at ``path`` read-only.

    SQLite needs a WAL database's ``-shm`` file to read it; in a folder it
    cannot write, with no ``-shm`` there (so no writer at work), the file is
    opened ``immutable``.
    """
    options = {"mode": "ro"}
    if not os.access(path.parent, os.W_OK) and not Path(f"{path}-shm").exists():
        options["immutable"] = "1"
    return options


def _sqlite(database: str) -> list[WatchSummary] | None:
    if not database or database == ":memory:" or "?" in database or "%" in database:
        return None  # options or escapes in the URL: the engine knows them
    path = Path(database)
    if not path.is_file():
        return None
    query = "&".join(f"{k}={v}" for k, v in readonly_options(path).items())
    try:
        conn = sqlite3.connect(
            f"file:{quote(str(path.resolve()))}?{query}", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S
        )
    except sqlite3.Error:
        return None
    try:
        return _read(conn.cursor())
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _postgresql(conninfo: str) -> list[WatchSummary] | None:
    import psycopg  # noqa: PLC0415 - only a PostgreSQL listing pays for it

    try:
        with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cursor:
            return _read(cursor)
    except psycopg.Error:
        return None


def _read(cursor: Any) -> list[WatchSummary] | None:
    """The rows, if the schema is this watcher's (a DB-API cursor)."""
    cursor.execute("SELECT version_num FROM alembic_version")
    if [tuple(row) for row in cursor.fetchall()] != [(HEAD,)]:
        return None
    cursor.execute(QUERY)
    return [_summary(row) for row in cursor.fetchall()]


def _json(value: Any) -> Any:
    """A JSON column's value: text from SQLite, already decoded by psycopg."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _summary(row: Any) -> WatchSummary:
    (id_, url, site, state, interval_s, tags, next_check_at, last_checked_at,
     last_change_at, failure_count, versions, title, last_error, source_meta) = row  # fmt: skip
    meta = _json(source_meta)
    return WatchSummary(
        id=id_,
        url=url,
        site=site,
        state=WatchState(state),
        interval_s=interval_s,
        tags=tuple(_json(tags) or ()),
        next_check_at=next_check_at,
        last_checked_at=last_checked_at,
        last_change_at=last_change_at,
        failure_count=failure_count,
        version_count=int(versions),
        latest_title=title,
        last_error=last_error,
        source_meta=dict(meta) if meta is not None else None,
    )
