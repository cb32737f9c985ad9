"""Schema migrations: run Alembic programmatically and refuse stale databases.

The migration scripts live in the top-level ``alembic/`` folder of the
(editable) install. The daemon calls :func:`check_schema` at start-up so an
old database fails with one clear instruction instead of an obscure SQL error.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic.command import upgrade as alembic_upgrade
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from watcher.errors import SchemaOutOfDateError, StoreError
from watcher.store.engine import open_engine, safe_url

log = logging.getLogger(__name__)

ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"


def _config(url: str | None = None) -> Config:
    if not (ALEMBIC_DIR / "env.py").is_file():
        raise StoreError(f"migration scripts not found in {ALEMBIC_DIR}")
    config = Config()  # no ini file: env.py leaves the caller's logging alone
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    if url is not None:
        # ConfigParser treats "%" as interpolation; URL-encoded passwords contain it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The revision this version of watcher needs."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise StoreError(f"no migration scripts in {ALEMBIC_DIR}")
    return head


def upgrade(url: str) -> None:
    """Bring the database at ``url`` up to the newest schema (idempotent)."""
    log.info("upgrading database %s to %s", safe_url(url), head_revision())
    try:
        alembic_upgrade(_config(url), "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot upgrade database {safe_url(url)}: {exc}") from exc


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at; ``None`` for an empty database."""
    engine = open_engine(url)
    try:
        return _revision(engine)
    finally:
        engine.dispose()


def _revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read schema version of {engine.url!r}: {exc}") from exc


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDateError` unless the database is at the head revision."""
    current = _revision(engine)
    needed = head_revision()
    if current == needed:
        return
    known = {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaOutOfDateError(
            f"database schema is at {current}, newer than this watcher knows ({needed}):"
            " upgrade watcher"
        )
    raise SchemaOutOfDateError(
        f"database schema is at {current or 'none (empty database)'}, this watcher needs"
        f" {needed}: run `watcher db upgrade`"
    )
