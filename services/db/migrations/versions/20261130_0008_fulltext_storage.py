"""full-text storage on PostgreSQL: the tsvector kept in the row (MAIN), the body moved out of it first (EXTERNAL)

A document chunk's row (~1 KB of text plus ~1.4 KB of tsvector) passes PostgreSQL's 2 KB TOAST threshold; by
default the tsvector went out of line and every ``@@`` of a search read it back (1.7× slower at 100k entries).
Applies to rows written from now on. Nothing to do on SQLite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE fulltext_entries ALTER COLUMN tsv SET STORAGE MAIN")
        op.execute("ALTER TABLE fulltext_entries ALTER COLUMN body SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE fulltext_entries ALTER COLUMN tsv SET STORAGE EXTENDED")
        op.execute("ALTER TABLE fulltext_entries ALTER COLUMN body SET STORAGE EXTENDED")
