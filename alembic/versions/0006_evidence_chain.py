"""Versions record the evidence for them: where the fetch's WARC record lies
(file, offset, length, id, SHA-256 of its bytes), the SHA-256 of the snapshot
file, and a hash chain (each version's hash covers the previous one's).

Versions stored before have NULLs: they predate the record and the chain,
which starts at the first version stored after the upgrade.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("snapshot_sha256", sa.String(64)),
    ("warc_file", sa.String(255)),
    ("warc_offset", sa.BigInteger()),
    ("warc_length", sa.Integer()),
    ("warc_record_id", sa.String(64)),
    ("warc_sha256", sa.String(64)),
    ("prev_hash", sa.String(64)),
    ("chain_hash", sa.String(64)),
)


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
