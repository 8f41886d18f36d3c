"""Who can read the data: the data dir is 0700, the instance secret and the SQLite files (-wal, -shm too) 0600,
whether they are created now or were left readable by an earlier version."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import SecretStr

from services.db import Database
from services.security import SECRET_FILE_NAME, load_or_create_secret
from services.settings import DatabaseSettings, Settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems run with (files 0644, folders 0755 unless the code asks for less)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def use(database: Database) -> None:
    """Start it and write, so SQLite makes its -wal and -shm files."""
    await database.start()
    async with database.transaction() as session:
        connection = await session.connection()
        await connection.execute(sa.text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
        await connection.execute(sa.text("INSERT INTO probe VALUES (1)"))


async def test_a_new_data_dir_its_secret_and_database_are_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "home" / "agent-ui", database_url=None)
    load_or_create_secret(None, settings.data_dir)
    database = Database(settings.resolved_database_url(), DatabaseSettings())
    try:
        await use(database)
        files = sorted(path.name for path in settings.data_dir.iterdir())
        assert files == ["agent-ui.db", "agent-ui.db-shm", "agent-ui.db-wal", SECRET_FILE_NAME]
        assert mode(settings.data_dir) == 0o700
        assert {name: mode(settings.data_dir / name) for name in files} == dict.fromkeys(files, 0o600)
    finally:
        await database.stop()


async def test_files_left_readable_by_an_earlier_version_are_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    load_or_create_secret(None, data_dir)
    earlier = Database(f"sqlite:///{data_dir / 'agent-ui.db'}", DatabaseSettings())
    await use(earlier)  # stays open, as a crashed process leaves its -wal and -shm behind
    again = Database(f"sqlite:///{data_dir / 'agent-ui.db'}", DatabaseSettings())
    try:
        for path in [data_dir, *data_dir.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        assert {path.name for path in data_dir.iterdir()} >= {"agent-ui.db-wal", "agent-ui.db-shm"}

        load_or_create_secret(None, data_dir)
        await use(again)
        assert mode(data_dir) == 0o700
        assert {path.name: mode(path) for path in data_dir.iterdir()} == {
            name: 0o600 for name in ("agent-ui.db", "agent-ui.db-wal", "agent-ui.db-shm", SECRET_FILE_NAME)
        }
    finally:
        await again.stop()
        await earlier.stop()


def test_the_data_dir_is_private_with_a_configured_secret_too(tmp_path: Path) -> None:
    load_or_create_secret(SecretStr("s" * 40), tmp_path / "configured")
    assert mode(tmp_path / "configured") == 0o700
    assert list((tmp_path / "configured").iterdir()) == []


async def test_a_database_outside_the_data_dir_gets_a_private_folder_and_file(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'elsewhere' / 'db' / 'app.db'}", DatabaseSettings())
    try:
        await use(database)
        assert mode(tmp_path / "elsewhere" / "db") == 0o700
        assert {path.name: mode(path) for path in (tmp_path / "elsewhere" / "db").iterdir()} == {
            "app.db": 0o600, "app.db-wal": 0o600, "app.db-shm": 0o600
        }  # fmt: skip
    finally:
        await database.stop()


async def test_the_running_app_keeps_its_data_private(app: FastAPI, settings: Settings) -> None:
    """The whole app as started: data dir 0700, and on SQLite the database (here a copy made 0644) 0600."""
    assert mode(settings.data_dir) == 0o700
    url = settings.resolved_database_url()
    if "sqlite" in url:
        database_file = Path(url.split("///", 1)[1])
        for path in [database_file, *database_file.parent.glob(database_file.name + "-*")]:
            assert mode(path) == 0o600, path


def test_processes_starting_together_on_a_new_data_dir_share_one_secret(tmp_path: Path) -> None:
    """Two instances (or two test workers) started at once on an empty data dir: one writes the secret, the
    other reads that one; neither fails nor reads a half-written file."""
    data_dir = tmp_path / "data"
    program = ("import sys; from services.security import load_or_create_secret; from pathlib import Path; "
               "print(load_or_create_secret(None, Path(sys.argv[1])).decode())")  # fmt: skip
    for _ in range(5):
        shutil.rmtree(data_dir, ignore_errors=True)
        starts = [subprocess.Popen([sys.executable, "-c", program, str(data_dir)], cwd=ROOT,
                                   stdout=subprocess.PIPE, text=True) for _ in range(4)]  # fmt: skip
        secrets = {process.communicate(timeout=30)[0].strip() for process in starts}
        assert all(process.returncode == 0 for process in starts)
        assert secrets == {(data_dir / SECRET_FILE_NAME).read_text().strip()}
        assert sorted(path.name for path in data_dir.iterdir()) == [SECRET_FILE_NAME]  # no draft left behind
