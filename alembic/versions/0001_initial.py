"""Initial schema: watches, contents, versions, checks, changes.

Written by hand to match watcher/store/tables.py (tests compare the two).
Times are epoch milliseconds in BIGINT columns.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _fk(
    table: str, name: str, target: str, ondelete: str, *, nullable: bool = False
) -> sa.Column[int]:
    """A foreign-key column named like tables.NAMING_CONVENTION would name it."""
    fk_name = f"fk_{table}_{name}_{target.split('.', maxsplit=1)[0]}"
    return sa.Column(
        name, Id, sa.ForeignKey(target, ondelete=ondelete, name=fk_name), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "watches",
        _id(),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("site", sa.String(255), nullable=False),
        sa.Column("interval_s", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("next_check_at", sa.BigInteger(), nullable=False),
        sa.Column("last_checked_at", sa.BigInteger(), nullable=True),
        sa.Column("last_change_at", sa.BigInteger(), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("last_body_sha256", sa.String(64), nullable=True),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("unchanged_count", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(255), nullable=True),
        sa.Column("claimed_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_watches"),
        sa.UniqueConstraint("url", name="uq_watches_url"),
    )
    op.create_index("ix_watches_state_next_check_at", "watches", ["state", "next_check_at"])

    op.create_table(
        "contents",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_contents"),
    )

    op.create_table(
        "versions",
        _id(),
        _fk("versions", "watch_id", "watches.id", "CASCADE"),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("captured_at", sa.BigInteger(), nullable=False),
        sa.Column(
            "content_sha256",
            sa.String(64),
            sa.ForeignKey("contents.sha256", name="fk_versions_content_sha256_contents"),
            nullable=False,
        ),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("archive_path", sa.Text(), nullable=True),
        sa.Column("page_metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_versions"),
        sa.UniqueConstraint("watch_id", "seq", name="uq_versions_watch_id_seq"),
    )
    op.create_index(
        "ix_versions_watch_id_content_sha256", "versions", ["watch_id", "content_sha256"]
    )
    op.create_index("ix_versions_content_sha256", "versions", ["content_sha256"])

    op.create_table(
        "checks",
        _id(),
        _fk("checks", "watch_id", "watches.id", "CASCADE"),
        sa.Column("checked_at", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("redirects", sa.JSON(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("body_sha256", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _fk("checks", "version_id", "versions.id", "SET NULL", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_checks"),
    )
    op.create_index("ix_checks_watch_id_id", "checks", ["watch_id", "id"])
    op.create_index("ix_checks_checked_at", "checks", ["checked_at"])
    op.create_index("ix_checks_version_id", "checks", ["version_id"])

    op.create_table(
        "changes",
        _id(),
        _fk("changes", "watch_id", "watches.id", "CASCADE"),
        _fk("changes", "old_version_id", "versions.id", "CASCADE"),
        _fk("changes", "new_version_id", "versions.id", "CASCADE", nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        _fk("changes", "reverted_to_version_id", "versions.id", "SET NULL", nullable=True),
        sa.Column("reported_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_changes"),
    )
    op.create_index("ix_changes_watch_id", "changes", ["watch_id"])
    op.create_index("ix_changes_reported_at", "changes", ["reported_at"])
    op.create_index("ix_changes_old_version_id", "changes", ["old_version_id"])
    op.create_index("ix_changes_new_version_id", "changes", ["new_version_id"])
    op.create_index("ix_changes_reverted_to_version_id", "changes", ["reverted_to_version_id"])


def downgrade() -> None:
    for table in ("changes", "checks", "versions", "contents", "watches"):
        op.drop_table(table)
