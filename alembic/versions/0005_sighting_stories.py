"""Block sightings name the story their article tells, so copies of one story
at several URLs of a site count once when its boilerplate is learned.

Sightings recorded before stand for their own watch (story NULL), as they did.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("block_sightings") as batch:
        batch.add_column(sa.Column("story", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("block_sightings") as batch:
        batch.drop_column("story")
