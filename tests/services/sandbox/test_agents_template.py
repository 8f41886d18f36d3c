"""The agents template on both real backends: the Codex and Claude Code CLIs run in a sandbox without network, and
reach an MCP server outside it through the bridge and a unix socket, as agent-ui's tool server will be reached.

The first build fetches the CLIs from the npm registry (about 10 s) and builds the root filesystem and the image
(about 15 s each); later runs find them cached.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.sandbox.backends.bwrap import LocalSandboxBackend
from services.sandbox.backends.docker import NAME_PREFIX, DockerSandboxBackend
from services.sandbox.base import ExecResult, Limits, SandboxBackend, SandboxSpec, result_of
from services.sandbox.image import CLAUDE_CODE_VERSION, CODEX_VERSION, SOCKET_DIR, TEMPLATES
from tests.services.sandbox.test_bridge import KEY, URL, serving

AGENTS = TEMPLATES["agents"]
LIMITS = Limits(cpu=1.0, memory_mb=512, pids=128, disk_mb=512)  # the product's default memory
LOCAL_CACHE = Path("/var/lib/agent-ui-sandbox")
LOCAL_ROOT = LOCAL_CACHE / "test-workspaces"


@pytest.fixture(params=["docker", "local"])
async def backend(request: pytest.FixtureRequest) -> SandboxBackend:
    instance = "tests-" + uuid.uuid4().hex[:6]
    if request.param == "docker":
        return DockerSandboxBackend(docker_host=request.getfixturevalue("agents_engine"), instance=instance,
                                    owner="ins_tests")  # fmt: skip
    return LocalSandboxBackend(root=LOCAL_ROOT, cache_dir=LOCAL_CACHE, instance=instance, owner="ins_tests")


@pytest.fixture
async def sandbox(backend: SandboxBackend) -> AsyncIterator[tuple[str, Path]]:
    """An agents sandbox, and where its workspace is on this host (both engines are local here)."""
    sandbox_id = uuid.uuid4().hex[:12]
    started = time.monotonic()
    ref = await backend.create(SandboxSpec(sandbox_id=sandbox_id, user_id="u", image=AGENTS.image, limits=LIMITS))
    print(f"{backend.kind} agents sandbox created in {time.monotonic() - started:.1f} s")
    try:
        if isinstance(backend, DockerSandboxBackend):
            import docker

            client = docker.DockerClient(base_url=backend.address)
            workspace = Path(client.api.inspect_volume(NAME_PREFIX + sandbox_id)["Mountpoint"])
        else:
            workspace = LOCAL_ROOT / ref / "workspace"
        yield ref, workspace
    finally:
        await backend.destroy(ref)


async def run(backend: SandboxBackend, ref: str, command: str, env: dict[str, str] | None = None) -> ExecResult:
    return await result_of(
        backend.exec_stream(ref, command, timeout_s=60, workdir="/workspace", env=env or {}, max_output=100_000)
    )


async def test_codex_and_claude_code_run(backend: SandboxBackend, sandbox: tuple[str, Path]) -> None:
    ref, _ = sandbox
    codex = await run(backend, ref, "codex --version")
    assert codex.exit_code == 0 and codex.stdout.strip() == f"codex-cli {CODEX_VERSION}", codex
    claude = await run(backend, ref, "claude --version")
    assert claude.exit_code == 0 and claude.stdout.strip() == f"{CLAUDE_CODE_VERSION} (Claude Code)", claude
    python = await run(backend, ref, 'python3 -c "print(6*7)"; id -u')
    assert python.stdout.split() == ["42", "1000"]


async def test_the_bridge_is_on_the_path_and_python_runs_it(backend: SandboxBackend, sandbox: tuple[str, Path]) -> None:
    ref, _ = sandbox
    where = await run(backend, ref, f"command -v agent-ui-mcp-bridge; test -d {SOCKET_DIR} && echo mount-point")
    assert where.stdout.split() == ["/usr/local/bin/agent-ui-mcp-bridge", "mount-point"], where
    # No socket is mounted here: the bridge answers the agent's first request with why, and ends with stdin.
    initialize = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    bridged = await run(backend, ref, f"echo '{initialize}' | agent-ui-mcp-bridge",
                        env={"AGENT_UI_MCP_URL": URL, "AGENT_UI_MCP_SOCKET": f"{SOCKET_DIR}/mcp.sock"})  # fmt: skip
    assert bridged.exit_code == 0, bridged
    answer = json.loads(bridged.stdout)
    assert answer["id"] == 1
    assert answer["error"]["message"] == f"cannot reach the tool server at unix socket {SOCKET_DIR}/mcp.sock: " \
                                         "No such file or directory"  # fmt: skip
    assert "agent-ui-mcp-bridge: initialize: cannot reach" in bridged.stderr


async def test_claude_code_reaches_an_mcp_server_outside_through_the_bridge(
    backend: SandboxBackend, sandbox: tuple[str, Path]
) -> None:
    ref, workspace = sandbox
    socket_path = workspace / "mcp.sock"
    bridge_env = f"-e AGENT_UI_MCP_URL={URL} -e AGENT_UI_MCP_SOCKET=/workspace/mcp.sock"
    async with serving(socket_path):
        socket_path.chmod(0o666)  # the sandbox's user is another host user
        added = await run(backend, ref, f"claude mcp add -s user tools {bridge_env} -e AGENT_UI_MCP_KEY={KEY} "
                                        "-- agent-ui-mcp-bridge && "
                                        f"claude mcp add -s user wrong-key {bridge_env} -e AGENT_UI_MCP_KEY=sk_wrong "
                                        "-- agent-ui-mcp-bridge")  # fmt: skip
        assert added.exit_code == 0, added
        listed = await run(backend, ref, "claude mcp list")  # connects to each server, offline
    assert listed.exit_code in (0, 1), listed
    lines = {line.split(":", 1)[0]: line for line in listed.stdout.splitlines() if ":" in line}
    assert "✔ Connected" in lines["tools"], listed.stdout
    assert "Failed to connect" in lines["wrong-key"] and "unauthorized" in lines["wrong-key"], listed.stdout


async def test_codex_reads_the_bridge_from_its_config(backend: SandboxBackend, sandbox: tuple[str, Path]) -> None:
    ref, _ = sandbox
    env = f"--env AGENT_UI_MCP_URL={URL} --env AGENT_UI_MCP_SOCKET={SOCKET_DIR}/mcp.sock"
    added = await run(backend, ref, f"codex mcp add tools {env} -- agent-ui-mcp-bridge")
    assert added.exit_code == 0, added
    listed = await run(backend, ref, "codex mcp list --json")
    assert listed.exit_code == 0, listed
    [server] = json.loads(listed.stdout)
    assert server["name"] == "tools" and server["transport"]["command"] == "agent-ui-mcp-bridge"
    assert server["transport"]["env"]["AGENT_UI_MCP_SOCKET"] == f"{SOCKET_DIR}/mcp.sock"
    kept = await run(backend, ref, "cat /home/sandbox/.codex/config.toml")  # in the persistent home
    assert "[mcp_servers.tools]" in kept.stdout
