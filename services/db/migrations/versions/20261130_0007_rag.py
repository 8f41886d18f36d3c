"""RAG: resources, their extracted text, chunks, vectors per embedding model, and a per-user index version

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 08:04:06
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy import Text  # noqa: F401  (JSONB renders with it)

from sqlalchemy.dialects import postgresql

import services.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rag_index_versions",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_rag_index_versions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_rag_index_versions")),
    )
    op.create_table(
        "rag_resources",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("artifact_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("created_at", services.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", services.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_rag_resources_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rag_resources")),
    )
    with op.batch_alter_table("rag_resources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rag_resources_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_rag_resources_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rag_resources_user_id"), ["user_id"], unique=False)

    op.create_table(
        "rag_chunks",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("prefix_chars", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("heading", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["rag_resources.id"],
            name=op.f("fk_rag_chunks_resource_id_rag_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rag_chunks")),
    )
    with op.batch_alter_table("rag_chunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rag_chunks_resource_id"), ["resource_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rag_chunks_user_id"), ["user_id"], unique=False)

    op.create_table(
        "rag_documents",
        sa.Column("resource_id", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "sections", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["rag_resources.id"],
            name=op.f("fk_rag_documents_resource_id_rag_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resource_id", name=op.f("pk_rag_documents")),
    )
    op.create_table(
        "rag_vectors",
        sa.Column("chunk_id", sa.String(length=32), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chunk_id"], ["rag_chunks.id"], name=op.f("fk_rag_vectors_chunk_id_rag_chunks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("chunk_id", "model", name=op.f("pk_rag_vectors")),
    )
    with op.batch_alter_table("rag_vectors", schema=None) as batch_op:
        batch_op.create_index("ix_rag_vectors_user_model", ["user_id", "model"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rag_vectors", schema=None) as batch_op:
        batch_op.drop_index("ix_rag_vectors_user_model")

    op.drop_table("rag_vectors")
    op.drop_table("rag_documents")
    with op.batch_alter_table("rag_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rag_chunks_user_id"))
        batch_op.drop_index(batch_op.f("ix_rag_chunks_resource_id"))

    op.drop_table("rag_chunks")
    with op.batch_alter_table("rag_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rag_resources_user_id"))
        batch_op.drop_index(batch_op.f("ix_rag_resources_job_id"))
        batch_op.drop_index(batch_op.f("ix_rag_resources_created_at"))

    op.drop_table("rag_resources")
    op.drop_table("rag_index_versions")
