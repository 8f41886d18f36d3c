"""Alembic environment. The app passes its own connection (see Database.migrate); the CLI builds one from settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.db.fulltext import include_name
from services.db.metadata import metadata

config = context.config


def run_with_connection(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    from services.db.database import async_url
    from services.settings import Settings

    engine = create_async_engine(async_url(Settings().resolved_database_url()))
    async with engine.connect() as connection:
        await connection.run_sync(run_with_connection)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run against a database")

connection = config.attributes.get("connection")
if connection is not None:
    run_with_connection(connection)
else:
    asyncio.run(run_from_settings())
