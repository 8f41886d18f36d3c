"""Sandboxes through the app vs the docker SDK directly, on the same engine (agent-ui's own dockerd).

Prints: cold create → first exec → destroy (median of 20) and its ratio to the same sequence done with the
SDK (target <= 1.2x); exec round trip of `true` vs raw `exec_run` (target <= 1.1x); 20 concurrent sandboxes
each running a short Python job (errors, wall time).
Run (after `scripts/test`, which installs and starts the engine): `.venv/bin/python -m bench.sandbox`.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import docker
import httpx

from services.sandbox.image import IMAGE
from tests.live_server import live_server

ROUNDS, EXECS = 20, 50
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


async def main() -> None:
    host = subprocess.run(["scripts/dockerd", "start"], capture_output=True, text=True, check=True).stdout.strip()
    client = docker.DockerClient(base_url=host)
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
            for _ in range(ROUNDS):
                direct.append(direct_cycle(client))
                via_app.append(await app_cycle(http))
            print(f"cold create → exec → destroy, median of {ROUNDS}:")
            print(f"  docker SDK {statistics.median(direct) * 1000:7.1f} ms   via app {statistics.median(via_app) * 1000:7.1f} ms"
                  f"   ratio {statistics.median(via_app) / statistics.median(direct):.2f}x (target <= 1.2x)")  # fmt: skip

            sandbox = (await http.post("/api/v1/agent/sandboxes", json={})).json()
            container = client.containers.get(
                client.containers.list(filters={"label": f"agent-ui.sandbox-id={sandbox['id']}"})[0].id
            )
            raw, through = [], []
            for _ in range(EXECS):
                started = time.perf_counter()
                container.exec_run(["true"], user="1000:1000")
                raw.append(time.perf_counter() - started)
                started = time.perf_counter()
                await http.post(f"/api/v1/agent/sandboxes/{sandbox['id']}/exec", json={"command": "true"})
                through.append(time.perf_counter() - started)
            await http.delete(f"/api/v1/agent/sandboxes/{sandbox['id']}")
            print(f"exec round trip of `true`, median of {EXECS}:")
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
            errors = [e for e in await asyncio.gather(*(job() for _ in range(20))) if e]
            print(
                f"20 concurrent sandboxes, each a short Python job: errors {len(errors)} {errors[:3]}, "
                f"wall {time.perf_counter() - started:.2f} s"
            )


if __name__ == "__main__":
    asyncio.run(main())
