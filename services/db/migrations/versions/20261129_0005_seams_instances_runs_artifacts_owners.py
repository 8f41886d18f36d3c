"""seams: instances with leases, runs of every kind (subject, params, progress, result, owner), artifacts,
owners of credit holds and sandboxes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 04:13:32.543804
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import services.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("machine", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_started", sa.Integer(), nullable=False),
        sa.Column("started_at", services.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", services.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instances_heartbeat_at"), ["heartbeat_at"], unique=False)

    # Runs: a subject of any kind instead of a chat session, and what jobs need. Two steps, so that SQLite's
    # table rebuild keeps the session ids (copied into subject_id in between).
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("params", services.db.types.JSONType, nullable=True))
        batch_op.add_column(sa.Column("progress", services.db.types.JSONType, nullable=True))
        batch_op.add_column(sa.Column("result", services.db.types.JSONType, nullable=True))
        batch_op.add_column(sa.Column("owner_instance", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("started_at", services.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("error_message", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.alter_column(
            "kind",
            existing_type=sa.VARCHAR(length=16),
            type_=sqlmodel.sql.sqltypes.AutoString(length=32),
            existing_nullable=False,
        )
    op.execute("UPDATE runs SET subject_id = session_id, started_at = created_at")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_session_id"))
        batch_op.drop_column("session_id")
        batch_op.create_index(batch_op.f("ix_runs_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_owner_instance"), ["owner_instance"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "artifacts",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("storage_key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("created_at", services.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", services.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_artifacts_run_id_runs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_artifacts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
    )
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_artifacts_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_artifacts_user_id"), ["user_id"], unique=False)

    # A session's sandbox is found by the sandbox's session_id now (the sandbox tools do not know chat).
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.drop_column("sandbox_id")

    with op.batch_alter_table("credit_holds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_instance", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_credit_holds_owner_instance"), ["owner_instance"], unique=False)

    with op.batch_alter_table("sandboxes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_instance", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_sandboxes_owner_instance"), ["owner_instance"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sandboxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandboxes_owner_instance"))
        batch_op.drop_column("owner_instance")

    with op.batch_alter_table("credit_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_holds_owner_instance"))
        batch_op.drop_column("owner_instance")

    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sandbox_id", sa.VARCHAR(length=64), nullable=True))

    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_artifacts_user_id"))
        batch_op.drop_index(batch_op.f("ix_artifacts_run_id"))
    op.drop_table("artifacts")

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.VARCHAR(length=32), nullable=True))
    op.execute("UPDATE runs SET session_id = subject_id WHERE kind = 'chat'")
    op.execute("DELETE FROM runs WHERE kind <> 'chat'")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_subject_id"))
        batch_op.drop_index(batch_op.f("ix_runs_owner_instance"))
        batch_op.drop_index(batch_op.f("ix_runs_kind"))
        batch_op.create_index(batch_op.f("ix_runs_session_id"), ["session_id"], unique=False)
        batch_op.alter_column(
            "kind",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=32),
            type_=sa.VARCHAR(length=16),
            existing_nullable=False,
        )
        for column in ("error_message", "started_at", "owner_instance", "result", "progress", "params", "subject_id"):
            batch_op.drop_column(column)

    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instances_heartbeat_at"))
    op.drop_table("instances")
