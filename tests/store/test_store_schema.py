"""Migrations, schema checks and engine settings, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from watcher.errors import SchemaOutOfDateError, StoreError
from watcher.store import (
    Store,
    check_schema,
    current_revision,
    head_revision,
    open_engine,
    upgrade,
)
from watcher.store.tables import Base


def test_upgrade_from_empty_to_head_then_check_passes(db_url: str) -> None:
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == head_revision() == "0002"
    upgrade(db_url)  # idempotent
    engine = open_engine(db_url)
    try:
        check_schema(engine)
    finally:
        engine.dispose()


def test_check_schema_refuses_empty_database(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        with pytest.raises(SchemaOutOfDateError, match="run `watcher db upgrade`") as info:
            check_schema(engine)
    finally:
        engine.dispose()
    assert "this watcher needs 0002" in str(info.value)


def test_check_schema_refuses_unknown_revision(db_url: str) -> None:
    upgrade(db_url)
    engine = open_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))
        with pytest.raises(SchemaOutOfDateError, match="at ffff9999, newer"):
            check_schema(engine)
    finally:
        engine.dispose()


def test_store_open_checks_schema(db_url: str) -> None:
    with pytest.raises(SchemaOutOfDateError):
        Store.open(db_url)
    upgrade(db_url)
    store = Store.open(db_url)
    assert store.list_watches() == []
    store.close()


def test_migration_matches_models(db_url: str) -> None:
    """The hand-written migration creates exactly what tables.py declares."""
    upgrade(db_url)
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_sqlite_engine_pragmas(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/pragmas.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_engine_pre_pings(pg_url: str) -> None:
    engine = open_engine(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        assert engine.pool._pre_ping
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_bad_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open database"):
        open_engine("nosuchdb://x")


def test_database_errors_become_store_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="database error"):
        store.add_version(
            12345,  # no such watch: foreign key violation
            captured_at=1,
            content_sha256="0" * 64,
            content_text="x",
            http_status=200,
            final_url=None,
            title=None,
            archive_path=None,
        )
