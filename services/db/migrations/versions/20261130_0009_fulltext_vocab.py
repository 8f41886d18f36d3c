"""full-text vocabulary on SQLite: an fts5vocab table over the index, to know how many entries hold a word

Any-word searches leave out the words most entries hold (they match half the index and barely move the ranking,
while bm25 has to be computed for every row they match). PostgreSQL needs nothing.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 09:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE fulltext_vocab USING fts5vocab('fulltext_fts', 'row')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS fulltext_vocab")
