"""A real `uvicorn main:app` child process on 127.0.0.1, for HTTP, SSE and browser tests."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class LiveServer:
    url: str
    pid: int


def live_secret(data_dir: Path, database_url: str | None = None) -> str:
    """The server's secret: the same for the same database (a restart finds its keys; instances of one deployment
    share it), another for every other (servers of tests running side by side must not take each other's
    sandboxes for a dead instance's)."""
    return "live-server-secret-" + hashlib.sha256((database_url or str(data_dir)).encode()).hexdigest()[:32]


@contextmanager
def live_server(
    data_dir: Path,
    *,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    startup_timeout_s: float = 60,
) -> Iterator[LiveServer]:
    port = free_port()
    env = {
        **os.environ,
        "AGENT_UI_DATA_DIR": str(data_dir),
        "AGENT_UI_SECRET_KEY": live_secret(data_dir, database_url),
        "NICEGUI_STORAGE_PATH": str(data_dir / "ui-storage"),
        # No sandboxes started ahead unless a test asks: most live servers never create one.
        "AGENT_UI_SANDBOX__WARM_POOL__DOCKER": "0",
        "AGENT_UI_SANDBOX__WARM_POOL__LOCAL": "0",
    }
    env.pop("DATABASE_URL", None)
    env.update(extra_env or {})
    if database_url:
        env["DATABASE_URL"] = database_url
    log_path = data_dir.parent / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base_url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not become healthy:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield LiveServer(base_url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
