"""Alembic environment: migrate the database given by ``-x url=`` or the config.

Online mode only; the engine comes from watcher.store.open_engine so SQLite
gets the same pragmas (WAL, foreign keys) as the daemon. ``render_as_batch``
lets later migrations alter tables on SQLite.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from watcher.store.engine import open_engine
from watcher.store.tables import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set sqlalchemy.url")
    return url


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = open_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # Batch mode rebuilds a table by copying it and dropping the original;
        # with foreign keys on, dropping ``watches`` would cascade-delete every
        # version. SQLite ignores this pragma inside a transaction: it runs first.
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        connection.commit()  # end SQLAlchemy's autobegun transaction: migrations commit their own
        try:
            _migrate(connection)
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"migration broke {len(problems)} foreign keys: {problems[:3]}")
        finally:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")
            connection.commit()
        return
    _migrate(connection)


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported; run against a database")
run_migrations_online()
