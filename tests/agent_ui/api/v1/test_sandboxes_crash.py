"""After kill -9 of the app with live sandboxes, a restart removes their containers."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import docker
import httpx

from tests.live_server import live_server


async def test_a_restart_after_kill_removes_the_containers(tmp_path: Path, docker_engine: str) -> None:
    data_dir = tmp_path / "data"
    env = {"AGENT_UI_SANDBOX__BACKEND": "docker", "AGENT_UI_SANDBOX__DOCKER_HOST": docker_engine,
           "AGENT_UI_LLM__LOCAL__ENABLED": "false"}  # fmt: skip
    engine = docker.DockerClient(base_url=docker_engine)
    account = {"email": "crash@example.com", "password": "correct horse battery"}

    with live_server(data_dir, extra_env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            await http.post("/api/v1/auth/register", json=account)
            await http.post("/api/v1/auth/login", json=account)
            ids = [(await http.post("/api/v1/agent/sandboxes", json={})).json()["id"] for _ in range(2)]
        containers = {sid: engine.containers.list(filters={"label": f"agent-ui.sandbox-id={sid}"}) for sid in ids}
        assert all(len(found) == 1 for found in containers.values())
        os.kill(server.pid, signal.SIGKILL)

    assert all(engine.containers.list(all=True, filters={"label": f"agent-ui.sandbox-id={sid}"}) for sid in ids)
    with live_server(data_dir, extra_env=env) as server:
        for sid in ids:
            assert engine.containers.list(all=True, filters={"label": f"agent-ui.sandbox-id={sid}"}) == []
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            await http.post("/api/v1/auth/login", json=account)
            for sid in ids:
                sandbox = (await http.get(f"/api/v1/agent/sandboxes/{sid}")).json()
                assert sandbox["status"] == "destroyed" and sandbox["destroy_reason"] == "server restart"
            balance = (await http.get("/api/v1/agent/credits/balance")).json()
            assert balance["held"] == "0.000000"
