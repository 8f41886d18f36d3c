"""The one database: async engine, unit-of-work sessions, migrations at start, health."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.security import PRIVATE_FILE, make_private, private_dir, private_file
from services.settings import DatabaseSettings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every instance of the app.
MIGRATION_LOCK_ID = 0x6167_656E_7475_69


class NestedTransactionError(RuntimeError):
    """A write transaction was opened inside another one of the same task: on SQLite that waits forever for
    the writer lock the task itself holds, on PostgreSQL it commits apart from the outer one. A bug, not input."""


# The write transaction the current task holds, and who opened it (for the error message).
_open_writer: ContextVar[tuple[asyncio.Task[object] | None, str] | None] = ContextVar("open_writer", default=None)


def _caller() -> str:
    """The function that opened a transaction (outside this module and contextlib)."""
    frame = sys._getframe(2)
    while frame.f_back is not None and frame.f_code.co_filename in (__file__, asynccontextmanager.__code__.co_filename):
        frame = frame.f_back
    return f"{frame.f_code.co_qualname} ({frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})"


@dataclass(frozen=True)
class DatabaseHealth:
    ok: bool
    backend: str
    latency_ms: float | None
    error: str | None = None


class Database:
    """Owns the engine. Services open a unit of work with :meth:`transaction` and commit by leaving it."""

    def __init__(self, url: str, settings: DatabaseSettings) -> None:
        self.url = async_url(url)
        self._settings = settings
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._start_lock = asyncio.Lock()
        # SQLite has one writer at a time. Writers of this process queue here, in order, instead of
        # polling inside SQLite's busy handler (which starves under load); other processes still
        # meet the busy timeout.
        self._sqlite_writer = asyncio.Lock()
        self._stopped = False

    @property
    def backend(self) -> str:
        return make_url(self.url).get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("database not started")
        return self._engine

    async def start(self) -> None:
        """Create the engine and bring the schema to the newest migration. Idempotent and safe to race."""
        async with self._start_lock:
            if self._sessions is not None:
                return
            if self._stopped:
                raise RuntimeError("database was stopped")
            engine = self._create_engine()
            try:
                self._engine = engine
                await self.migrate()
            except BaseException:
                self._engine = None
                await engine.dispose()
                raise
            self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    async def stop(self) -> None:
        self._stopped = True
        async with self._start_lock:
            if self._engine is not None:
                await self._engine.dispose()
            self._engine = None
            self._sessions = None

    def _create_engine(self) -> AsyncEngine:
        url = make_url(self.url)
        kwargs: dict[str, Any] = {"echo": self._settings.echo}
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
                _private_sqlite_files(Path(url.database))
            engine = create_async_engine(url, **kwargs)
            _configure_sqlite(engine, self._settings.sqlite_busy_timeout_ms)
            return engine
        kwargs |= {"pool_size": self._settings.pool_size, "pool_pre_ping": True}
        return create_async_engine(url, **kwargs)

    @asynccontextmanager
    async def transaction(self, *, exclusive: str | None = None, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed on exit and rolled back on error.

        On SQLite every writing transaction starts with ``BEGIN IMMEDIATE``: a deferred one that reads
        and then writes fails at once with "database is locked" when another writer got in between, and
        the busy timeout cannot help it. Pass ``readonly=True`` for pure reads, which then never wait.
        ``exclusive`` names a critical section on PostgreSQL (a transaction-scoped advisory lock), so
        writers of the same name never interleave; on SQLite writers never interleave anyway.
        """
        if self._sessions is None:
            await self.start()
        assert self._sessions is not None
        if readonly:
            async with self._sessions() as session, session.begin():
                yield session
            return
        task = asyncio.current_task()
        outer = _open_writer.get()
        if outer is not None and outer[0] is task:
            raise NestedTransactionError(
                f"{_caller()} opened a write transaction inside the one {outer[1]} holds; "
                "pass the outer session down instead"
            )
        token = _open_writer.set((task, _caller()))
        try:
            if self.backend == "sqlite":
                async with self._sqlite_writer, self._sessions() as session, session.begin():
                    await session.connection(execution_options={"sqlite_begin_immediate": True})
                    yield session
                return
            async with self._sessions() as session, session.begin():
                if exclusive is not None and self.backend == "postgresql":
                    connection = await session.connection()
                    await connection.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(exclusive)}
                    )
                yield session
        finally:
            _open_writer.reset(token)

    async def migrate(self) -> None:
        """Upgrade to head. On PostgreSQL under an advisory lock, so instances starting together do not race."""
        from alembic import command

        config = alembic_config()

        def upgrade(connection: sa.Connection) -> None:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        async with self.engine.connect() as connection:
            if self.backend == "postgresql":
                await connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_ID})
            try:
                await connection.run_sync(upgrade)
                await connection.commit()
            finally:
                if self.backend == "postgresql":
                    await connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_ID})
                    await connection.commit()

    async def health(self, timeout_s: float = 2.0) -> DatabaseHealth:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s), self.engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except Exception as exc:
            return DatabaseHealth(False, self.backend, None, type(exc).__name__)
        return DatabaseHealth(True, self.backend, round((time.perf_counter() - started) * 1000, 2))


def async_url(url: str) -> str:
    """Any usual spelling of a database URL, pointed at the async driver we ship (asyncpg, aiosqlite)."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _private_sqlite_files(path: Path) -> None:
    """The database file and its companions readable by the owner only (0600): the file is created here, before
    SQLite opens it, because SQLite gives its -wal, -shm and -journal files the database file's permissions.
    A folder made for it is 0700; one that exists is left as it is (the data dir is made 0700 at start)."""
    if not path.parent.exists():
        private_dir(path.parent)
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        make_private(path.with_name(path.name + suffix), PRIVATE_FILE)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """WAL, a busy timeout, foreign keys, and our own BEGIN so that BEGIN IMMEDIATE is possible."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not emit its own BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Reads straight from the mapped file (shared by every connection, paged by the OS) instead of copying
        # pages into each connection's small cache: full-text searches over large indexes read many pages.
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("sqlite_begin_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
