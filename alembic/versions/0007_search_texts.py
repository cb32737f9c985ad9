"""Full-text search inside a PostgreSQL database: ``search_texts``, one row per
version (its title and plain text), with GIN indexes over pg_trgm's trigrams
of both, so the servers sharing the database share one index
(watcher/search/pgtrgm.py; why these indexes: watcher/store/searchtexts.py).

PostgreSQL only: on SQLite this revision creates nothing (its index is the
FTS5 file ``$WATCHER_HOME/search.db``). The table starts empty; a server
fills it when it starts.

pg_trgm is created when the role may (a superuser, or since PostgreSQL 13 a
role with CREATE on the database: it is a trusted extension). When it may
not, the table is made without the trigram indexes, a warning says so, and
searches read every text until a superuser runs ``CREATE EXTENSION pg_trgm``;
the next server to start (``watcher serve``, ``watcher run --http``) then
creates the indexes (:func:`watcher.store.searchtexts.create_trigram_indexes`,
also run here). The texts are compressed with LZ4 where the server has it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

from watcher.store.engine import error_detail
from watcher.store.searchtexts import create_trigram_indexes

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

log = logging.getLogger("watcher.store.migrations")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():  # a failure must not abort the migration's transaction
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        log.warning("cannot create the extension pg_trgm: %s", error_detail(exc))
    op.create_table(
        "search_texts",
        sa.Column(
            "version_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "versions.id", ondelete="CASCADE", name="fk_search_texts_version_id_versions"
            ),
            autoincrement=False,
        ),
        sa.Column("watch_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("captured_at", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("kinds", sa.Text(), nullable=False, server_default=""),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version_id", name="pk_search_texts"),
        # texts out of line past 128 bytes a row: a search reads candidates' times
        postgresql_with={"toast_tuple_target": 128},
    )
    op.create_index(
        "ix_search_texts_time",
        "search_texts",
        [sa.text("captured_at DESC"), sa.text("version_id DESC")],
    )
    op.create_index("ix_search_texts_watch_id", "search_texts", ["watch_id"])
    for column in ("sha256", "kinds"):  # compared for every candidate: never out of line
        op.execute(f"ALTER TABLE search_texts ALTER COLUMN {column} SET STORAGE PLAIN")
    _lz4(bind)
    create_trigram_indexes(bind)


def _lz4(bind: sa.Connection) -> None:
    """Texts compressed with LZ4 where the server has it (PostgreSQL 14 and
    later, built with it): a search reading texts decompresses them twice as
    fast as with the default pglz, and they take less room."""
    try:
        with bind.begin_nested():
            for column in ("title", "body"):
                bind.exec_driver_sql(
                    f"ALTER TABLE search_texts ALTER COLUMN {column} SET COMPRESSION lz4"
                )
    except DBAPIError as exc:
        log.info("search_texts: texts compressed with pglz (%s)", error_detail(exc))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("search_texts")  # pg_trgm stays: other tables may use it
