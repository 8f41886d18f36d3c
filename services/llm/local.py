"""The embedded local model: a llama.cpp server child process, started on first use and never left behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from services.errors import UpstreamUnavailableError
from services.llm.weights import LOCAL_MODELS, LocalModelSpec, WeightsUnavailableError, ensure_weights
from services.settings import LocalModelSettings

log = logging.getLogger(__name__)
WORKER_MODULE = "services.llm.local_worker"
RunnerState = Literal["not_started", "starting", "ok", "down"]
LoadPhase = Literal["idle", "joining", "starting", "ready", "down"]
PHASE_OF_STATE: dict[RunnerState, LoadPhase] = {
    "not_started": "idle",
    "starting": "starting",
    "ok": "ready",
    "down": "down",
}


@dataclass(frozen=True)
class LoadProgress:
    """How far a start of the local model has come: a page shows it while an answer waits for the first load."""

    phase: LoadPhase  # joining: weight parts into one file (first use only); starting: the server loads them
    parts_done: int = 0
    parts_total: int = 0
    elapsed_s: float = 0.0
    typical_s: float = 0.0  # the last measured load here, else the model's typical one

    @property
    def loading(self) -> bool:
        return self.phase in ("joining", "starting")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _is_our_worker(pid: int) -> bool:
    try:
        return WORKER_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


class LocalModelRunner:
    """Owns the child process. ``base_url()`` starts it when needed and returns its address."""

    def __init__(self, settings: LocalModelSettings, *, run_dir: Path) -> None:
        self._settings = settings
        self._pidfile = run_dir / "local-llm.pid"
        self._log_path = run_dir / "local-llm.log"
        self._lock = asyncio.Lock()
        self._process: asyncio.subprocess.Process | None = None
        self._url: str | None = None
        self._state: RunnerState = "not_started"
        self._last_error: str | None = None
        self._load_started: float | None = None
        self._parts: tuple[int, int] | None = None  # (joined, total) while the weights are being joined
        self._last_load_s: float | None = None

    @property
    def spec(self) -> LocalModelSpec:
        spec = LOCAL_MODELS.get(self._settings.model)
        if spec is None:
            raise WeightsUnavailableError(f"unknown local model {self._settings.model}")
        return spec

    def state(self) -> tuple[RunnerState, str | None]:
        """For health: never starts anything."""
        if self._state == "ok" and (self._process is None or self._process.returncode is not None):
            return "down", "the local model process exited; it restarts on next use"
        return self._state, self._last_error

    def progress(self) -> LoadProgress:
        """Where a load stands (read-only, never starts anything)."""
        state, _ = self.state()
        typical = self._last_load_s or (spec.typical_load_s if (spec := LOCAL_MODELS.get(self._settings.model)) else 0)
        if state != "starting":
            return LoadProgress(phase=PHASE_OF_STATE[state], typical_s=typical)
        elapsed = time.monotonic() - self._load_started if self._load_started is not None else 0.0
        done, total = self._parts or (0, 0)
        return LoadProgress(phase="joining" if self._parts is not None else "starting", parts_done=done,
                            parts_total=total, elapsed_s=elapsed, typical_s=typical)  # fmt: skip

    def reap_stale(self) -> None:
        """Kill a worker left behind by a previous run of the app that was killed (SIGKILL gives no cleanup)."""
        try:
            pid = int(self._pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        if _is_our_worker(pid):
            log.warning("killing local model process %s left by a previous run", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._pidfile.unlink(missing_ok=True)

    async def base_url(self) -> str:
        if self._url is not None and self._process is not None and self._process.returncode is None:
            return self._url
        async with self._lock:
            if self._url is not None and self._process is not None and self._process.returncode is None:
                return self._url
            if self._process is not None:
                log.warning("local model process died (exit %s); restarting", self._process.returncode)
            await self._start()
            assert self._url is not None
            return self._url

    async def _start(self) -> None:
        self._state = "starting"
        self._last_error = None
        self._load_started = time.monotonic()

        def joined(done: int, total: int) -> None:  # from the joining thread: one tuple swap
            self._parts = (done, total)

        try:
            model_path = await asyncio.to_thread(ensure_weights, self.spec, self._settings.model_dir, joined)
        except (WeightsUnavailableError, OSError) as exc:
            self._state, self._last_error = "down", str(exc)
            raise UpstreamUnavailableError(f"local model unavailable: {exc}") from exc
        finally:
            self._parts = None
        port = _free_port()
        self._pidfile.parent.mkdir(parents=True, exist_ok=True)
        log_file = await asyncio.to_thread(self._log_path.open, "ab")
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", WORKER_MODULE,
                "--model", str(model_path), "--alias", self.spec.id, "--port", str(port),
                "--threads", str(self._settings.threads), "--ctx", str(self._settings.context_size),
                "--parallel", str(self._settings.parallel), "--parent", str(os.getpid()),
                stdout=log_file, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            log_file.close()
        self._process = process
        await asyncio.to_thread(self._pidfile.write_text, str(process.pid))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + self._settings.startup_timeout_s
        async with httpx.AsyncClient(timeout=2.0) as http:
            while True:
                if process.returncode is not None:
                    self._state, self._last_error = "down", f"exited with {process.returncode} while loading"
                    raise UpstreamUnavailableError(f"local model failed to start; see {self._log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/health")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    await self.stop()
                    self._state, self._last_error = "down", "did not become healthy in time"
                    raise UpstreamUnavailableError("local model did not start in time")
                await asyncio.sleep(0.2)
        self._url = f"{url}/v1"
        self._state = "ok"
        self._last_load_s = time.monotonic() - self._load_started
        log.info("local model %s serving on %s (pid %s)", self.spec.id, url, process.pid)

    async def stop(self) -> None:
        process, self._process, self._url = self._process, None, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 10)
        self._pidfile.unlink(missing_ok=True)
        if self._state != "down":
            self._state = "not_started"
