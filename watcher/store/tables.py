"""SQLAlchemy declarative tables: the database layout watcher relies on.

All times are epoch milliseconds (UTC) stored as BIGINT, because integers
compare and index the same way on SQLite and PostgreSQL and need no timezone
handling. JSON columns use the portable ``JSON`` type (TEXT on SQLite, json on
PostgreSQL). Enumerated values (watch state, check outcome, change verdict)
are plain strings validated in Python (see :mod:`watcher.store.records`), so a
new value never needs a table rebuild on SQLite.

The Alembic migrations in the top-level ``alembic/`` folder are written by
hand and must produce exactly this layout; ``tests/store`` checks that they do.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Surrogate keys: BIGINT on PostgreSQL, INTEGER on SQLite (only an
#: ``INTEGER PRIMARY KEY`` is a rowid alias there, which autoincrement needs).
Id = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        int: BigInteger(),
        str: Text(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class Watch(Base):
    """A tracked URL and its schedule; ``claimed_*`` is the worker lease."""

    __tablename__ = "watches"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(unique=True)
    site: Mapped[str] = mapped_column(String(255))
    interval_s: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(16))
    tags: Mapped[list[str]]
    created_at: Mapped[int]
    next_check_at: Mapped[int]
    last_checked_at: Mapped[int | None]
    last_change_at: Mapped[int | None]
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    last_body_sha256: Mapped[str | None] = mapped_column(String(64))
    failure_count: Mapped[int] = mapped_column(Integer)
    unchanged_count: Mapped[int] = mapped_column(Integer)
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[int | None]
    #: The reason of the last failed check; NULL once a check succeeds.
    last_error: Mapped[str | None]
    #: The source (feed or section page) that found this article, if any.
    source_id: Mapped[int | None] = mapped_column(Id, ForeignKey("sources.id", ondelete="SET NULL"))
    #: What a source said of the article: feed GUID, published/updated times.
    source_meta: Mapped[dict[str, Any] | None] = mapped_column(JSON())

    __table_args__ = (
        Index("ix_watches_state_next_check_at", "state", "next_check_at"),
        Index("ix_watches_source_id", "source_id"),
    )


class Source(Base):
    """A feed or a section page whose article links become watches."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(unique=True)
    #: ``feed`` or ``page``; empty until the first fetch tells.
    kind: Mapped[str] = mapped_column(String(8))
    tags: Mapped[list[str]]
    interval_s: Mapped[int] = mapped_column(Integer)
    #: Only article URLs matching this regular expression become watches.
    match: Mapped[str | None]
    state: Mapped[str] = mapped_column(String(16))
    #: ``cli`` (watcher source add) or ``config`` (watcher.toml).
    origin: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[int]
    next_check_at: Mapped[int]
    last_checked_at: Mapped[int | None]
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    failure_count: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None]
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[int | None]

    __table_args__ = (Index("ix_sources_state_next_check_at", "state", "next_check_at"),)


class Content(Base):
    """Snapshot text keyed by the hash of its plain text, so identical versions
    are stored once. Kept compressed, or as a delta against the watch's
    previous version (see :mod:`watcher.store.codec`); rows written before
    that have ``codec`` ``text`` and the plain text in ``text``."""

    __tablename__ = "contents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str | None]
    #: Bytes of the plain text (UTF-8), whatever the stored form.
    size: Mapped[int]
    #: ``text``, ``zstd`` (a full copy in ``data``) or ``zstd-delta``.
    codec: Mapped[str] = mapped_column(String(16), server_default="text")
    data: Mapped[bytes | None] = mapped_column(LargeBinary())
    #: The content a ``zstd-delta`` row is a delta of (needed to read it).
    base_sha256: Mapped[str | None] = mapped_column(String(64), ForeignKey("contents.sha256"))
    #: Deltas between this row and the full copy its chain starts from.
    depth: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (Index("ix_contents_base_sha256", "base_sha256"),)


class Version(Base):
    """One stored capture of a watch; ``seq`` counts 1, 2, 3... per watch."""

    __tablename__ = "versions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    watch_id: Mapped[int] = mapped_column(Id, ForeignKey("watches.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    captured_at: Mapped[int]
    content_sha256: Mapped[str] = mapped_column(String(64), ForeignKey("contents.sha256"))
    http_status: Mapped[int | None] = mapped_column(Integer)
    final_url: Mapped[str | None]
    title: Mapped[str | None]
    archive_path: Mapped[str | None]
    page_metadata: Mapped[dict[str, Any]]
    created_at: Mapped[int]
    #: The metadata is that of this watch's version ``metadata_seq`` (an
    #: earlier one; ``page_metadata`` is then ``{}``): consecutive versions
    #: mostly share it, and a ticking page would store it once an hour.
    metadata_seq: Mapped[int | None] = mapped_column(Integer)
    #: The evidence (NULL on versions stored before 0006): SHA-256 of the
    #: snapshot file (what ``watcher export`` writes), the fetch's WARC
    #: response record and the SHA-256 of its bytes, and the hash chain:
    #: ``chain_hash`` covers these, the seq, the time and ``prev_hash`` (the
    #: previous version's ``chain_hash``). See watcher/evidence.py.
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64))
    warc_file: Mapped[str | None] = mapped_column(String(255))
    warc_offset: Mapped[int | None] = mapped_column(BigInteger)
    warc_length: Mapped[int | None] = mapped_column(Integer)
    warc_record_id: Mapped[str | None] = mapped_column(String(64))
    warc_sha256: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    chain_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("watch_id", "seq", name="uq_versions_watch_id_seq"),
        Index("ix_versions_watch_id_content_sha256", "watch_id", "content_sha256"),
        Index("ix_versions_content_sha256", "content_sha256"),
    )


class Check(Base):
    """One fetch attempt and its outcome; pruned to the newest N per watch."""

    __tablename__ = "checks"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    watch_id: Mapped[int] = mapped_column(Id, ForeignKey("watches.id", ondelete="CASCADE"))
    checked_at: Mapped[int]
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    http_status: Mapped[int | None] = mapped_column(Integer)
    final_url: Mapped[str | None]
    redirects: Mapped[list[str]]
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None]
    version_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("versions.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_checks_watch_id_id", "watch_id", "id"),
        Index("ix_checks_checked_at", "checked_at"),
        Index("ix_checks_version_id", "version_id"),
    )


class ChangeRow(Base):
    """A classified difference between two consecutive versions of a watch."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    watch_id: Mapped[int] = mapped_column(Id, ForeignKey("watches.id", ondelete="CASCADE"))
    old_version_id: Mapped[int] = mapped_column(Id, ForeignKey("versions.id", ondelete="CASCADE"))
    new_version_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("versions.id", ondelete="CASCADE")
    )
    created_at: Mapped[int]
    verdict: Mapped[str] = mapped_column(String(16))
    kinds: Mapped[list[str]]
    summary: Mapped[str]
    record: Mapped[dict[str, Any]]
    reverted_to_version_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("versions.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_changes_watch_id", "watch_id"),
        Index("ix_changes_old_version_id", "old_version_id"),
        Index("ix_changes_new_version_id", "new_version_id"),
        Index("ix_changes_reverted_to_version_id", "reverted_to_version_id"),
    )


class Delivery(Base):
    """The outbox: one message of one change to one channel, written in the
    same transaction as the change, so a crash never loses one. ``state`` is
    ``pending``, ``sent`` or ``dead`` (gave up after too many failures);
    ``claimed_*`` is the sender's lease; ``digest`` (``hour``/``day``) batches
    the row into one message per period, sent at ``due_at``."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    change_id: Mapped[int] = mapped_column(Id, ForeignKey("changes.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(8))
    digest: Mapped[str | None] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[int]
    created_at: Mapped[int]
    sent_at: Mapped[int | None]
    last_error: Mapped[str | None]
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[int | None]

    __table_args__ = (
        UniqueConstraint("change_id", "channel", name="uq_deliveries_change_id_channel"),
        Index("ix_deliveries_state_due_at", "state", "due_at"),
    )


class BlockSighting(Base):
    """A short block's fingerprint seen in one article of a host: what lets the
    diff learn a site's boilerplate (see watcher/boilerplate.py)."""

    __tablename__ = "block_sightings"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(16), primary_key=True)
    watch_id: Mapped[int] = mapped_column(
        Id, ForeignKey("watches.id", ondelete="CASCADE"), primary_key=True
    )
    #: The story the article tells (boilerplate.story): copies of one story
    #: at several URLs count once. NULL (sightings before 0005): the watch.
    story: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (Index("ix_block_sightings_watch_id", "watch_id"),)


#: The GIN trigram indexes of ``search_texts``: name -> column. Not declared
#: on the table below: their expression names pg_trgm's schema, known only in
#: the database (watcher.store.searchtexts.create_trigram_indexes makes them).
TRIGRAM_INDEXES = {"ix_search_texts_title_trgm": "title", "ix_search_texts_body_trgm": "body"}


class PostgresOnly(DeclarativeBase):
    """Tables only a PostgreSQL database has: their migrations skip SQLite,
    so ``tests/store`` compares these with a PostgreSQL database alone."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = Base.type_annotation_map


class SearchText(PostgresOnly):
    """A version as the PostgreSQL search index keeps it (watcher/search/pgtrgm.py):
    its place, the kinds of the change that led to it, title and plain text,
    with GIN indexes over pg_trgm's trigrams of ``title`` and ``body``
    (:data:`TRIGRAM_INDEXES`). The texts are kept out of line (TOAST) past
    128 bytes a row, so a search reading candidates' times reads narrow rows."""

    __tablename__ = "search_texts"

    version_id: Mapped[int] = mapped_column(
        ForeignKey(Version.__table__.c.id, ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )
    watch_id: Mapped[int]
    seq: Mapped[int] = mapped_column(Integer)
    captured_at: Mapped[int]
    sha256: Mapped[str]
    kinds: Mapped[str] = mapped_column(server_default="")
    title: Mapped[str]
    body: Mapped[str]

    __table_args__ = (
        Index("ix_search_texts_time", text("captured_at DESC"), text("version_id DESC")),
        Index("ix_search_texts_watch_id", "watch_id"),
        {"postgresql_with": {"toast_tuple_target": 128}},
    )
