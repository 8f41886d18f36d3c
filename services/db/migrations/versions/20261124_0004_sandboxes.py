"""sandboxes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 02:39:19.491387
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import services.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sandboxes",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("backend", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("template", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("pids", sa.Integer(), nullable=False),
        sa.Column("disk_mb", sa.Integer(), nullable=False),
        sa.Column("network", sa.Boolean(), nullable=False),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("timeout_s", sa.Integer(), nullable=False),
        sa.Column("created_at", services.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", services.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", services.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("destroy_reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("hold_ids", services.db.types.JSONType, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sandboxes_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandboxes")),
    )
    with op.batch_alter_table("sandboxes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sandboxes_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_sandboxes_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sandboxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandboxes_user_id"))
        batch_op.drop_index(batch_op.f("ix_sandboxes_status"))

    op.drop_table("sandboxes")
