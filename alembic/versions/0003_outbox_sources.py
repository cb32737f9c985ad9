"""Outbox and sources: deliveries replace changes.reported_at; feeds and
section pages that find articles; a watch's last error and its source.

A change whose reports were not written yet (``reported_at`` NULL) becomes a
pending delivery to the built-in ``reports`` channel, so nothing owed is lost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("match", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("next_check_at", sa.BigInteger(), nullable=False),
        sa.Column("last_checked_at", sa.BigInteger(), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(255), nullable=True),
        sa.Column("claimed_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
        sa.UniqueConstraint("url", name="uq_sources_url"),
    )
    op.create_index("ix_sources_state_next_check_at", "sources", ["state", "next_check_at"])

    with op.batch_alter_table("watches") as batch:
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column(
                "source_id",
                Id,
                sa.ForeignKey(
                    "sources.id", ondelete="SET NULL", name="fk_watches_source_id_sources"
                ),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("source_meta", sa.JSON(), nullable=True))
        batch.create_index("ix_watches_source_id", ["source_id"])

    op.create_table(
        "deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "change_id",
            Id,
            sa.ForeignKey("changes.id", ondelete="CASCADE", name="fk_deliveries_change_id_changes"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("digest", sa.String(8), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(255), nullable=True),
        sa.Column("claimed_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint("change_id", "channel", name="uq_deliveries_change_id_channel"),
    )
    op.create_index("ix_deliveries_state_due_at", "deliveries", ["state", "due_at"])
    op.execute(
        "INSERT INTO deliveries (change_id, channel, state, attempts, due_at, created_at) "
        "SELECT id, 'reports', 'pending', 0, created_at, created_at FROM changes "
        "WHERE reported_at IS NULL"
    )
    with op.batch_alter_table("changes") as batch:
        batch.drop_index("ix_changes_reported_at")
        batch.drop_column("reported_at")


def downgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("reported_at", sa.BigInteger(), nullable=True))
        batch.create_index("ix_changes_reported_at", ["reported_at"])
    op.execute(
        "UPDATE changes SET reported_at = created_at WHERE id NOT IN "
        "(SELECT change_id FROM deliveries WHERE channel = 'reports' AND state = 'pending')"
    )
    op.drop_table("deliveries")
    with op.batch_alter_table("watches") as batch:
        batch.drop_index("ix_watches_source_id")
        batch.drop_column("source_meta")
        batch.drop_column("source_id")
        batch.drop_column("last_error")
    op.drop_table("sources")
