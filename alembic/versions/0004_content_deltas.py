"""Contents compressed and stored as deltas; page metadata stored once per run.

``contents`` gains ``codec`` (``text``, ``zstd``, ``zstd-delta``), ``data``
(the compressed bytes), ``base_sha256`` (the content a delta needs to be
read) and ``depth`` (deltas since the chain's full copy); ``text`` becomes
nullable. Existing rows stay ``text`` with their plain text and read as
before; only new contents are compressed (see watcher/store/codec.py).
``versions`` gains ``metadata_seq``: a version whose page metadata is its
predecessor's names the version that holds it instead of repeating it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contents") as batch:
        batch.alter_column("text", existing_type=sa.Text(), nullable=True)
        batch.add_column(sa.Column("codec", sa.String(16), server_default="text", nullable=False))
        batch.add_column(sa.Column("data", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column(
                "base_sha256",
                sa.String(64),
                sa.ForeignKey("contents.sha256", name="fk_contents_base_sha256_contents"),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("depth", sa.Integer(), server_default="0", nullable=False))
        batch.create_index("ix_contents_base_sha256", ["base_sha256"])
    with op.batch_alter_table("versions") as batch:  # a plain ADD COLUMN on SQLite
        batch.add_column(sa.Column("metadata_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Refused while compressed contents exist: their text is not in ``text``."""
    bind = op.get_bind()
    packed = bind.execute(sa.text("SELECT count(*) FROM contents WHERE codec <> 'text'"))
    if packed.scalar_one():
        raise RuntimeError("compressed contents exist: export the archive before downgrading")
    op.execute(
        "UPDATE versions SET page_metadata = (SELECT h.page_metadata FROM versions h"
        " WHERE h.watch_id = versions.watch_id AND h.seq = versions.metadata_seq)"
        " WHERE metadata_seq IS NOT NULL"
    )
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("metadata_seq")
    with op.batch_alter_table("contents") as batch:
        batch.drop_index("ix_contents_base_sha256")
        batch.drop_constraint("fk_contents_base_sha256_contents", type_="foreignkey")
        batch.drop_column("depth")
        batch.drop_column("base_sha256")
        batch.drop_column("data")
        batch.drop_column("codec")
        batch.alter_column("text", existing_type=sa.Text(), nullable=False)
