"""Migrations: an empty database gets the schema, a second start changes nothing, models and migrations agree."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from services.db import Database
from services.db.database import alembic_config
from services.db.fulltext import include_name
from services.db.metadata import metadata
from services.settings import DatabaseSettings
from tests.conftest import PG_ADMIN_URL

EXPECTED_TABLES = {"users", "auth_sessions", "auth_login_tickets", "agent_api_keys", "alembic_version"}


async def _state(db: Database) -> tuple[set[str], str | None]:
    async with db.engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
        version = (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
    return tables, version


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no schema at all: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"agent_ui_empty_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield PG_ADMIN_URL.rpartition("/")[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_empty_database_gets_the_schema_and_a_second_start_is_a_no_op(empty_database_url: str) -> None:
    database_url = empty_database_url
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    first = Database(database_url, DatabaseSettings())
    await first.start()
    tables, version = await _state(first)
    assert tables >= EXPECTED_TABLES
    assert version == head
    async with first.transaction() as session:
        await (await session.connection()).execute(
            sa.text(
                "INSERT INTO users (id, email, password_hash, role, is_disabled, created_at, updated_at) "
                "VALUES ('usr_1', 'a@b.io', 'x', 'user', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    await first.stop()

    second = Database(database_url, DatabaseSettings())
    await second.start()
    assert await _state(second) == (tables, version)
    async with second.engine.connect() as connection:
        assert (await connection.execute(sa.text("SELECT count(*) FROM users"))).scalar() == 1
    await second.stop()


async def test_models_and_migrations_agree(database_url: str) -> None:
    db = Database(database_url, DatabaseSettings())
    await db.start()
    async with db.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True, "include_name": include_name}), metadata
            )
        )
    await db.stop()
    assert diff == []


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", DatabaseSettings(sqlite_busy_timeout_ms=4321))
    await db.start()
    async with db.engine.connect() as connection:
        assert (await connection.execute(sa.text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await connection.execute(sa.text("PRAGMA busy_timeout"))).scalar() == 4321
    await db.stop()


async def test_json_columns_are_jsonb_on_postgresql(database_url: str) -> None:
    db = Database(database_url, DatabaseSettings())
    await db.start()
    async with db.engine.connect() as connection:
        columns = await connection.run_sync(lambda sync: sa.inspect(sync).get_columns("agent_api_keys"))
    await db.stop()
    scopes_type = next(column["type"] for column in columns if column["name"] == "scopes")
    expected = "JSONB" if database_url.startswith("postgresql") else "JSON"
    assert type(scopes_type).__name__ == expected


async def test_full_text_migration_indexes_the_chats_already_there(empty_database_url: str) -> None:
    """Migration 0006 backfills the index: titles and message texts of existing sessions are found at once."""
    from alembic import command
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.db.database import async_url
    from services.db.fulltext import FullTextIndex

    def upgrade_to(revision: str):  # type: ignore[no-untyped-def]
        def upgrade(connection: sa.Connection) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

        return upgrade

    engine = create_async_engine(async_url(empty_database_url))
    async with engine.connect() as connection:
        await connection.run_sync(upgrade_to("0005"))
        for statement in [
            "INSERT INTO users (id, email, password_hash, role, is_disabled, created_at, updated_at) "
            "VALUES ('usr_1', 'a@b.io', 'x', 'user', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            "INSERT INTO chat_sessions (id, user_id, title, model, created_at, updated_at) "
            "VALUES ('chs_1', 'usr_1', 'Holiday planning', 'm', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            "INSERT INTO chat_messages (id, session_id, user_id, role, content, status, prompt_tokens, "
            "completion_tokens, created_at) VALUES ('msg_1', 'chs_1', 'usr_1', 'user', "
            """'[{"type": "text", "text": "Where is Reykjavik?"}]', 'complete', 0, 0, CURRENT_TIMESTAMP)""",
            "INSERT INTO chat_messages (id, session_id, user_id, role, content, status, prompt_tokens, "
            "completion_tokens, created_at) VALUES ('msg_2', 'chs_1', 'usr_1', 'assistant', "
            """'[{"type": "tool_call", "name": "zebra"}, {"type": "text", "text": "In Iceland."}]', 'complete', """
            "0, 0, CURRENT_TIMESTAMP)",
        ]:
            await connection.execute(sa.text(statement))
        await connection.commit()
    await engine.dispose()

    db = Database(empty_database_url, DatabaseSettings())
    await db.start()  # upgrades to head
    chats = FullTextIndex(backend=db.backend, scope="chat")
    async with db.transaction(readonly=True) as session:
        found = {query: [hit.key for hit in await chats.search(session, query, owner="usr_1")]
                 for query in ("holiday", "reykjav", "iceland", "zebra")}  # fmt: skip
    await db.stop()
    assert found == {"holiday": ["chs_1"], "reykjav": ["msg_1"], "iceland": ["msg_2"], "zebra": []}
