"""full-text search: fulltext_entries (scope, key, owner, group, body) with an FTS5 index on SQLite and a
tsvector column with a GIN index on PostgreSQL; chat titles and message texts indexed

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 05:40:00
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_INDEX = [
    "CREATE VIRTUAL TABLE fulltext_fts USING fts5(body, content='fulltext_entries', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2', prefix='2 3')",
    "CREATE TRIGGER fulltext_entries_ai AFTER INSERT ON fulltext_entries BEGIN "
    "INSERT INTO fulltext_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER fulltext_entries_ad AFTER DELETE ON fulltext_entries BEGIN "
    "INSERT INTO fulltext_fts(fulltext_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER fulltext_entries_au AFTER UPDATE ON fulltext_entries BEGIN "
    "INSERT INTO fulltext_fts(fulltext_fts, rowid, body) VALUES ('delete', old.id, old.body); "
    "INSERT INTO fulltext_fts(rowid, body) VALUES (new.id, new.body); END",
]
BATCH = 500


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    columns: list[Any] = [
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("grp", sa.String(64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.UniqueConstraint("scope", "key", name="uq_fulltext_entries_scope_key"),
    ]
    if not sqlite:
        columns.append(
            sa.Column(
                "tsv",
                postgresql.TSVECTOR(),
                sa.Computed("to_tsvector('simple'::regconfig, body)", persisted=True),
                nullable=False,
            )
        )
    op.create_table("fulltext_entries", *columns)
    op.create_index("ix_fulltext_entries_scope_grp", "fulltext_entries", ["scope", "grp"])
    if sqlite:
        for statement in SQLITE_INDEX:
            op.execute(statement)
    else:
        op.create_index("ix_fulltext_entries_tsv", "fulltext_entries", ["tsv"], postgresql_using="gin")
    _index_chats()


def _index_chats() -> None:
    """Existing chats: each session's title, and the text of each message, grouped by session."""
    connection = op.get_bind()
    entries = sa.table(
        "fulltext_entries", sa.column("scope"), sa.column("key"), sa.column("owner"), sa.column("grp"),
        sa.column("body"),
    )  # fmt: skip
    connection.execute(
        entries.insert().from_select(
            ["scope", "key", "owner", "grp", "body"],
            sa.select(sa.literal("chat"), sa.column("id"), sa.column("user_id"), sa.column("id"), sa.column("title"))
            .select_from(sa.table("chat_sessions"))
            .where(sa.column("title") != ""),
        )
    )  # fmt: skip
    after = ""
    while rows := connection.execute(
        sa.text("SELECT id, session_id, user_id, content FROM chat_messages WHERE id > :after ORDER BY id LIMIT :n"),
        {"after": after, "n": BATCH},
    ).all():
        after = rows[-1].id
        batch = [
            {"scope": "chat", "key": row.id, "owner": row.user_id, "grp": row.session_id, "body": body}
            for row in rows
            if (body := _text(row.content))
        ]
        if batch:
            connection.execute(entries.insert(), batch)


def _text(content: Any) -> str:
    """The text parts of a message's content (a JSON list of parts), as the chat service indexes them."""
    parts = json.loads(content) if isinstance(content, str | bytes) else content
    texts = [part.get("text", "") for part in parts or [] if isinstance(part, dict) and part.get("type") == "text"]
    return "\n".join(text for text in texts if text).replace("\x00", " ")[:100_000].strip()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("fulltext_entries_ai", "fulltext_entries_ad", "fulltext_entries_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS fulltext_fts")
    op.drop_table("fulltext_entries")
