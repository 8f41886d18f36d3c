"""users sessions api keys

Revision ID: 0001
Revises:
Create Date: 2026-11-24 01:17:13.303106
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import services.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column(
            "email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False
        ),
        sa.Column(
            "password_hash",
            sqlmodel.sql.sqltypes.AutoString(length=255),
            nullable=False,
        ),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("is_disabled", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", services.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", services.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "agent_api_keys",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column(
            "api_key", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False
        ),
        sa.Column(
            "prefix", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("scopes", services.db.types.JSONType, nullable=False),
        sa.Column(
            "expires_at", services.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "sandbox_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column(
            "created_at", services.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "last_used_at", services.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "revoked_at", services.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_api_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_api_keys")),
        sa.UniqueConstraint("api_key", name=op.f("uq_agent_api_keys_api_key")),
    )
    with op.batch_alter_table("agent_api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agent_api_keys_sandbox_id"), ["sandbox_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_agent_api_keys_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "auth_login_tickets",
        sa.Column(
            "digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column(
            "expires_at", services.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_auth_login_tickets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_auth_login_tickets")),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column(
            "token_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column(
            "created_at", services.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", services.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "user_agent", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_auth_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_auth_sessions_token_digest")),
    )
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_auth_sessions_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_auth_sessions_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_auth_sessions_expires_at"))

    op.drop_table("auth_sessions")
    op.drop_table("auth_login_tickets")
    with op.batch_alter_table("agent_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_api_keys_user_id"))
        batch_op.drop_index(batch_op.f("ix_agent_api_keys_sandbox_id"))

    op.drop_table("agent_api_keys")
    op.drop_table("users")
