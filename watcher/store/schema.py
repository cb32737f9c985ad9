"""Schema migrations: run Alembic programmatically and refuse stale databases.

The migration scripts live in the top-level ``alembic/`` folder of the
(editable) install. The daemon calls :func:`check_schema` at start-up so an
old database fails with one clear instruction instead of an obscure SQL error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from watcher.errors import SchemaOutOfDateError, StoreError
from watcher.store.engine import engine_name, error_detail, open_engine, safe_url
from watcher.store.revision import HEAD
from watcher.store.tables import Base

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"


def _config(url: str | None = None) -> Config:
    from alembic.config import Config

    if not (ALEMBIC_DIR / "env.py").is_file():
        raise StoreError(f"migration scripts not found in {ALEMBIC_DIR}")
    config = Config()  # no ini file: env.py leaves the caller's logging alone
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    if url is not None:
        # ConfigParser treats "%" as interpolation; URL-encoded passwords contain it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The revision the migration scripts end at (:data:`HEAD`, read from them)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise StoreError(f"no migration scripts in {ALEMBIC_DIR}")
    return head


def upgrade(url: str, *, revision: str = "head") -> None:
    """Bring the database at ``url`` up to the newest schema (idempotent), or
    to an older ``revision`` (tests of a migration start from one).

    Refused, in one line, before anything is changed: a database at a revision
    this watcher does not know (a newer watcher's), and one holding watcher's
    tables without a version table (Alembic would try to create them again).
    """
    engine = open_engine(url)
    try:
        _refuse_unknown_state(engine, _revision(engine))
    finally:
        engine.dispose()
    from alembic.command import upgrade as alembic_upgrade
    from alembic.util import CommandError

    target = head_revision() if revision == "head" else revision
    log.info("upgrading database %s to %s", safe_url(url), target)
    try:
        alembic_upgrade(_config(url), target)
    except (SQLAlchemyError, CommandError) as exc:
        raise StoreError(f"cannot upgrade database {safe_url(url)}: {error_detail(exc)}") from exc


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at; ``None`` for an empty database."""
    engine = open_engine(url)
    try:
        return _revision(engine)
    finally:
        engine.dispose()


def _revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot read schema version of {engine_name(engine)}: {error_detail(exc)}"
        ) from exc


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}


def _refuse_unknown_state(engine: Engine, current: str | None) -> None:
    """SchemaOutOfDateError for a revision from a newer watcher; StoreError for
    watcher's tables without a version table (not made by ``watcher db upgrade``,
    or its ``alembic_version`` was dropped): no migration can be run on either."""
    if current is not None and current not in _known_revisions():
        raise SchemaOutOfDateError(
            f"database schema is at {current}, newer than this watcher knows"
            f" ({head_revision()}): upgrade watcher"
        )
    if current is None and _watcher_tables(engine):
        raise StoreError(
            f"database {engine_name(engine)} has watcher's tables but no schema version"
            " (no alembic_version table): restore it from a backup, or move it aside and run"
            " `watcher db upgrade` for a new one"
        )


def _watcher_tables(engine: Engine) -> list[str]:
    try:
        present = set(inspect(engine).get_table_names())
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot list the tables of {engine_name(engine)}: {error_detail(exc)}"
        ) from exc
    return sorted(present & set(Base.metadata.tables))


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDateError` unless the database is at the head revision.

    A database at :data:`HEAD` is told with one query; Alembic (~70 ms of
    import) is loaded only to explain any other."""
    if _stamped(engine) == HEAD:
        return
    current = _revision(engine)
    needed = head_revision()
    if current == needed:
        return
    _refuse_unknown_state(engine, current)
    raise SchemaOutOfDateError(
        f"database schema is at {current or 'none (empty database)'}, this watcher needs"
        f" {needed}: run `watcher db upgrade`"
    )


def _stamped(engine: Engine) -> str | None:
    """The revision in ``alembic_version``, read with one query; None when it
    cannot be read that way (no such table yet: Alembic's reading tells)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None
