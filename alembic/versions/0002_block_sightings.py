"""Block sightings: which short blocks appear in which articles of a host, so
site boilerplate is learned from what is stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "block_sightings",
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column(
            "watch_id",
            Id,
            sa.ForeignKey(
                "watches.id", ondelete="CASCADE", name="fk_block_sightings_watch_id_watches"
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("host", "fingerprint", "watch_id", name="pk_block_sightings"),
    )
    op.create_index("ix_block_sightings_watch_id", "block_sightings", ["watch_id"])


def downgrade() -> None:
    op.drop_table("block_sightings")
