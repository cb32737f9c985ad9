"""Migrations, schema checks and engine settings, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError

from watcher.errors import SchemaOutOfDateError, StoreError
from watcher.store import (
    Store,
    check_schema,
    current_revision,
    head_revision,
    open_engine,
    upgrade,
)
from watcher.store.engine import engine_name
from watcher.store.revision import HEAD
from watcher.store.tables import TRIGRAM_INDEXES, Base, PostgresOnly


def test_upgrade_from_empty_to_head_then_check_passes(db_url: str) -> None:
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == head_revision() == HEAD == "0007"
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
    assert "this watcher needs 0007" in str(info.value)


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


def _declared(obj: object, name: str | None, kind: str, *_: object) -> bool:
    """Everything but the trigram indexes, which tables.py cannot declare (their
    expression names pg_trgm's schema: tests/test_search.py checks them)."""
    return not (kind == "index" and name in TRIGRAM_INDEXES)


def test_migration_matches_models(db_url: str, dialect: str) -> None:
    """The hand-written migration creates exactly what tables.py declares:
    on PostgreSQL its PostgreSQL-only tables too, which SQLite has none of."""
    upgrade(db_url)
    engine = open_engine(db_url)
    declared = [Base.metadata] + ([PostgresOnly.metadata] if dialect == "postgresql" else [])
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_object": _declared}
            context = MigrationContext.configure(conn, opts=opts)
            assert compare_metadata(context, declared) == []  # type: ignore[arg-type]
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert ("search_texts" in tables) == (dialect == "postgresql")


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


def test_upgrade_refuses_an_unknown_revision_in_one_line(db_url: str) -> None:
    """A newer watcher's database: refused before Alembic's 90-line traceback."""
    upgrade(db_url)
    engine = open_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaOutOfDateError, match="at ffff9999, newer than this watcher") as info:
        upgrade(db_url)
    assert "\n" not in str(info.value)


def test_tables_without_a_version_table_are_refused_not_recreated(db_url: str) -> None:
    upgrade(db_url)
    engine = open_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
        with pytest.raises(StoreError, match="tables but no schema version") as checked:
            check_schema(engine)
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match="tables but no schema version") as upgraded:
        upgrade(db_url)
    for info in (checked, upgraded):
        message = str(info.value)
        assert "\n" not in message and "[SQL:" not in message and "sqlalche.me" not in message


def test_database_errors_are_one_line_without_the_background_link(store: Store) -> None:
    with pytest.raises(StoreError) as info:
        store.add_version(
            12345, captured_at=1, content_sha256="1" * 64, content_text="x",
            http_status=200, final_url=None, title=None, archive_path=None,
        )  # fmt: skip
    message = str(info.value)
    assert "\n" not in message and "sqlalche.me" not in message and "Background" not in message


def test_a_read_only_open_writes_nothing_and_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ro.db"
    with pytest.raises(StoreError, match=r"no database at .* yet"):
        open_engine(url, readonly=True)
    assert list(tmp_path.iterdir()) == []
    upgrade(url)
    engine = open_engine(url, readonly=True)
    try:
        check_schema(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA query_only").scalar() == 1
            with pytest.raises(OperationalError):
                conn.exec_driver_sql("DELETE FROM watches")
        assert engine_name(engine) == url  # messages name the user's database, not the URI
    finally:
        engine.dispose()


def test_a_read_only_sqlite_folder_is_opened_immutable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No -shm and a folder this process cannot write: SQLite could not read the
    WAL database at all unless told nobody writes it."""
    url = f"sqlite:///{tmp_path}/ro.db"
    upgrade(url)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: mode != os.W_OK and real_access(path, mode, **kw)
    )
    engine = open_engine(url, readonly=True)
    try:
        assert engine.url.query.get("immutable") == "1"
        check_schema(engine)
    finally:
        engine.dispose()
