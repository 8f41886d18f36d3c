"""Sandboxes through the app vs the docker SDK directly, on the same engine (agent-ui's own dockerd).

Prints:
- create → first exec through the API for the local backend cold and warm (targets: cold <= 30 ms median;
  warm <= 20 ms plus one exec round trip) and Docker warm and cold, beside raw `docker run --rm IMAGE true`;
- cold create → first exec → destroy (median of 20) and its ratio to the same sequence done with the SDK
  (target <= 1.2x); exec round trip of `true` vs raw `exec_run` (target <= 1.1x);
- 20 concurrent sandboxes each running a short Python job (errors, wall time);
- terminals on each backend through the WebSocket: open → first prompt, and a keystroke's echo (median of
  100; target <= 10 ms: typing must feel local).
Run (after `scripts/test`, which installs and starts the engine): `.venv/bin/python -m bench.sandbox`;
`--quick` takes a few samples of each (the test suite runs it so the benchmark keeps working).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx

from services.ids import new_id
from services.sandbox import make_backends
from services.sandbox.base import Limits, SandboxSpec, result_of
from services.sandbox.image import IMAGE
from services.settings import SandboxSettings
from tests.live_server import live_server


@dataclass(frozen=True)
class Samples:
    first_exec: int = 30
    keystrokes: int = 100
    cycles: int = 20
    execs: int = 50
    concurrent: int = 20
    raw_runs: int = 10


QUICK = Samples(first_exec=2, cycles=2, execs=3, concurrent=3, raw_runs=2, keystrokes=5)
JOB = "python3 -c \"import hashlib; print(hashlib.sha256(b'x' * 10**6).hexdigest()[:8])\""


def direct_cycle(client: docker.DockerClient) -> float:
    started = time.perf_counter()
    container = client.containers.run(
        IMAGE, ["sleep", "2147483647"], detach=True, init=True, user="1000:1000", network_mode="none",
        read_only=True, mem_limit="512m", nano_cpus=10**9, pids_limit=256, cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
    )  # fmt: skip
    container.exec_run(["sh", "-c", 'python3 -c "print(6*7)"'])
    container.remove(force=True)
    return time.perf_counter() - started


async def app_cycle(http: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    sandbox = (await http.post("/api/v1/agent/sandboxes", json={})).json()
    ran = await http.post(f"/api/v1/agent/sandboxes/{sandbox['id']}/exec", json={"command": 'python3 -c "print(6*7)"'})
    assert ran.json()["stdout"] == "42\n", ran.text
    await http.delete(f"/api/v1/agent/sandboxes/{sandbox['id']}")
    return time.perf_counter() - started


POOL = 2
ACCOUNT = {"email": "bench@example.com", "password": "correct horse battery"}


@contextlib.asynccontextmanager
async def signed_in_app(env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    env = {"AGENT_UI_LLM__LOCAL__ENABLED": "false", "AGENT_UI_CREDITS__SIGNUP_GRANT": "100000",
           "AGENT_UI_SANDBOX__MAX_LIVE_PER_USER": "25", **env}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "data", extra_env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            await http.post("/api/v1/auth/register", json=ACCOUNT)
            await http.post("/api/v1/auth/login", json=ACCOUNT)
            yield http


async def pool_full(http: httpx.AsyncClient) -> None:
    for _ in range(600):
        detail = (await http.get("/api/v1/health")).json()["dependencies"]["docker"]["detail"]
        if f"warm pool {POOL}/{POOL}" in detail:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the warm pool did not fill: {detail}")


async def first_exec(http: httpx.AsyncClient, *, warm: bool) -> tuple[float, float]:
    """Create → first exec, and the exec alone (the round trip a warm hand-out adds to)."""
    if warm:
        await pool_full(http)
    started = time.perf_counter()
    sandbox = (await http.post("/api/v1/agent/sandboxes", json={})).json()
    exec_started = time.perf_counter()
    ran = await http.post(f"/api/v1/agent/sandboxes/{sandbox['id']}/exec", json={"command": "true"})
    ended = time.perf_counter()
    assert ran.status_code == 200 and ran.json()["exit_code"] == 0, ran.text
    await http.delete(f"/api/v1/agent/sandboxes/{sandbox['id']}")
    return ended - started, ended - exec_started


async def first_exec_figures(host: str, samples: Samples) -> None:
    print(f"create → first exec (`true`) through the API, median of {samples.first_exec}:")
    rows: list[tuple[str, dict[str, str], bool, str]] = [
        ("local cold", {"AGENT_UI_SANDBOX__BACKEND": "local"}, False, "target <= 30 ms"),
        ("local warm", {"AGENT_UI_SANDBOX__BACKEND": "local", "AGENT_UI_SANDBOX__WARM_POOL__LOCAL": str(POOL)}, True,
         "target <= 20 ms + one exec"),
        ("docker warm", {"AGENT_UI_SANDBOX__BACKEND": "docker", "AGENT_UI_SANDBOX__DOCKER_HOST": host,
                         "AGENT_UI_SANDBOX__WARM_POOL__DOCKER": str(POOL)}, True, "target <= 20 ms + one exec"),
        ("docker cold", {"AGENT_UI_SANDBOX__BACKEND": "docker", "AGENT_UI_SANDBOX__DOCKER_HOST": host}, False, ""),
    ]  # fmt: skip
    terminals: list[tuple[str, float, float]] = []
    for name, env, warm, target in rows:
        async with signed_in_app(env) as http:
            await first_exec(http, warm=warm)  # warm-up: the local root filesystem, imports, connections
            figures = [await first_exec(http, warm=warm) for _ in range(samples.first_exec)]
            if not warm:  # the same server: its terminals
                terminals.append((name.split()[0], *await terminal_figures(http, samples)))
        total = statistics.median(f[0] for f in figures) * 1000
        exec_only = statistics.median(f[1] for f in figures) * 1000
        print(f"  {name:12} {total:7.1f} ms   (of which the exec {exec_only:5.1f} ms, so create {total - exec_only:5.1f}"
              f" ms)   {target}")  # fmt: skip
    backend = make_backends(SandboxSettings(backend="local"), instance="bench", owner="ins_bench",
                            data_dir=Path(tempfile.gettempdir()))[0]
    await backend.ping()
    alone = []
    for _ in range(samples.first_exec):
        spec = SandboxSpec(sandbox_id=new_id("sbx"), user_id="bench", image=IMAGE, limits=Limits(1.0, 512, 256, 512))
        started = time.perf_counter()
        ref = await backend.create(spec)
        await result_of(backend.exec_stream(ref, "true", timeout_s=60, workdir="/workspace", env={}, max_output=1000))
        alone.append(time.perf_counter() - started)
        await backend.destroy(ref)
    print(
        f"  {'local alone':12} {statistics.median(alone) * 1000:7.1f} ms   (the backend's create + exec, no HTTP or database)"
    )
    cli = shutil.which("docker")
    raw = []
    for _ in range(samples.raw_runs):
        started = time.perf_counter()
        if cli:
            subprocess.run([cli, "-H", host, "run", "--rm", "--network", "none", IMAGE, "true"], check=True)
        else:
            docker.DockerClient(base_url=host).containers.run(IMAGE, ["true"], remove=True, network_mode="none")
        raw.append(time.perf_counter() - started)
    how = "docker run --rm IMAGE true" if cli else "containers.run(IMAGE, 'true', remove=True) (no docker CLI)"
    print(f"  {'raw':12} {statistics.median(raw) * 1000:7.1f} ms   ({how}, median of {samples.raw_runs}, same engine)")
    print(f"terminals through the WebSocket (open → first prompt; a keystroke's echo, median of {samples.keystrokes}):")
    for backend_name, prompt, echo in terminals:
        print(f"  {backend_name + ' terminal':16} open → prompt {prompt * 1000:6.1f} ms   keystroke echo "
              f"{echo * 1000:5.2f} ms (target <= 10 ms)")


async def terminal_figures(http: httpx.AsyncClient, samples: Samples) -> tuple[float, float]:
    """Open → first prompt, and a keystroke's echo (median), through the WebSocket of the server behind ``http``."""
    from websockets.asyncio.client import connect

    sandbox = (await http.post("/api/v1/agent/sandboxes", json={})).json()
    base = f"/api/v1/agent/sandboxes/{sandbox['id']}/terminals"
    started = time.perf_counter()
    terminal = (await http.post(base, json={})).json()
    url = f"{str(http.base_url).replace('http', 'ws', 1).rstrip('/')}{base}/{terminal['id']}"
    cookie = "; ".join(f"{key}={value}" for key, value in http.cookies.items())
    async with connect(url, additional_headers={"Cookie": cookie}) as ws:
        seen = b""
        while b"$ " not in seen:  # the prompt (ash then asks where the cursor is: no answer needed)
            seen += await ws.recv()  # type: ignore[operator]
        prompt = time.perf_counter() - started
        echoes = []
        for index in range(samples.keystrokes):
            key = b"abcdefghij"[index % 10 : index % 10 + 1]
            sent = time.perf_counter()
            await ws.send(key)
            while key not in await ws.recv():  # type: ignore[operator]
                pass
            echoes.append(time.perf_counter() - sent)
        await ws.send(b"\x15")  # the line typed is dropped
    await http.delete(f"/api/v1/agent/sandboxes/{sandbox['id']}")
    return prompt, statistics.median(echoes)


async def main(samples: Samples) -> None:
    host = subprocess.run(["scripts/dockerd", "start"], capture_output=True, text=True, check=True).stdout.strip()
    client = docker.DockerClient(base_url=host)
    await first_exec_figures(host, samples)
    env = {"AGENT_UI_SANDBOX__DOCKER_HOST": host, "AGENT_UI_SANDBOX__MAX_LIVE_PER_USER": "25",
           "AGENT_UI_LLM__LOCAL__ENABLED": "false", "AGENT_UI_CREDITS__SIGNUP_GRANT": "100000"}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "data", extra_env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            account = {"email": "bench@example.com", "password": "correct horse battery"}
            await http.post("/api/v1/auth/register", json=account)
            await http.post("/api/v1/auth/login", json=account)
            direct_cycle(client)
            await app_cycle(http)  # warm-up
            direct, via_app = [], []
            for _ in range(samples.cycles):
                direct.append(direct_cycle(client))
                via_app.append(await app_cycle(http))
            print(f"cold create → exec → destroy, median of {samples.cycles}:")
            print(f"  docker SDK {statistics.median(direct) * 1000:7.1f} ms   via app {statistics.median(via_app) * 1000:7.1f} ms"
                  f"   ratio {statistics.median(via_app) / statistics.median(direct):.2f}x (target <= 1.2x)")  # fmt: skip

            sandbox = (await http.post("/api/v1/agent/sandboxes", json={})).json()
            container = client.containers.get(
                client.containers.list(filters={"label": f"agent-ui.sandbox-id={sandbox['id']}"})[0].id
            )
            raw, through = [], []
            for _ in range(samples.execs):
                started = time.perf_counter()
                container.exec_run(["true"], user="1000:1000")
                raw.append(time.perf_counter() - started)
                started = time.perf_counter()
                await http.post(f"/api/v1/agent/sandboxes/{sandbox['id']}/exec", json={"command": "true"})
                through.append(time.perf_counter() - started)
            await http.delete(f"/api/v1/agent/sandboxes/{sandbox['id']}")
            print(f"exec round trip of `true`, median of {samples.execs}:")
            print(f"  raw exec_run {statistics.median(raw) * 1000:6.1f} ms   via app {statistics.median(through) * 1000:6.1f} ms"
                  f"   ratio {statistics.median(through) / statistics.median(raw):.2f}x (target <= 1.1x)")  # fmt: skip

            async def job() -> str | None:
                try:
                    created = await http.post("/api/v1/agent/sandboxes", json={})
                    if created.status_code != 201:
                        return f"create {created.status_code}"
                    sid = created.json()["id"]
                    ran = await http.post(f"/api/v1/agent/sandboxes/{sid}/exec", json={"command": JOB})
                    await http.delete(f"/api/v1/agent/sandboxes/{sid}")
                    return (
                        None if ran.status_code == 200 and ran.json()["exit_code"] == 0 else f"exec {ran.status_code}"
                    )
                except httpx.HTTPError as exc:
                    return type(exc).__name__

            started = time.perf_counter()
            errors = [e for e in await asyncio.gather(*(job() for _ in range(samples.concurrent))) if e]
            print(
                f"{samples.concurrent} concurrent sandboxes, each a short Python job: errors {len(errors)}"
                f"{' ' + str(errors[:3]) if errors else ''}, wall {time.perf_counter() - started:.2f} s"
            )


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a few samples of each: check that it runs")
    asyncio.run(main(QUICK if parser.parse_known_args(argv)[0].quick else Samples()))


if __name__ == "__main__":
    run()
