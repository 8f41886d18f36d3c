"""The backend contract and attacks from inside a sandbox, on every real backend: the Docker engine and
bubblewrap (nothing mocked)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.sandbox.backends.bwrap import LocalSandboxBackend
from services.sandbox.backends.docker import DockerSandboxBackend
from services.sandbox.base import ExecResult, Limits, SandboxBackend, SandboxSpec, result_of
from services.sandbox.image import IMAGE

LIMITS = Limits(cpu=1.0, memory_mb=128, pids=64, disk_mb=64)


@pytest.fixture(params=["docker", "local"])
async def backend(request: pytest.FixtureRequest) -> SandboxBackend:
    instance = "tests-" + uuid.uuid4().hex[:6]
    if request.param == "docker":
        return DockerSandboxBackend(docker_host=request.getfixturevalue("docker_engine"), instance=instance,
                                    owner="ins_tests")  # fmt: skip
    return LocalSandboxBackend(root=Path("/var/lib/agent-ui-sandbox/test-workspaces"),
                               cache_dir=Path("/var/lib/agent-ui-sandbox"), instance=instance,
                               owner="ins_tests")  # fmt: skip


@pytest.fixture
async def sandbox(backend: SandboxBackend) -> AsyncIterator[str]:
    ref = await backend.create(SandboxSpec(sandbox_id=uuid.uuid4().hex[:12], user_id="u", image=IMAGE, limits=LIMITS))
    yield ref
    await backend.destroy(ref)


async def run(
    backend: SandboxBackend, ref: str, command: str, timeout_s: float = 20, max_output: int = 100_000
) -> ExecResult:
    return await result_of(
        backend.exec_stream(ref, command, timeout_s=timeout_s, workdir="/workspace", env={}, max_output=max_output)
    )


async def test_python_runs_as_an_unprivileged_user(backend: SandboxBackend, sandbox: str) -> None:
    result = await run(backend, sandbox, 'python3 -c "print(6*7)"; id -u')
    assert result.exit_code == 0 and result.stdout.split() == ["42", "1000"]


async def test_there_is_no_network(backend: SandboxBackend, sandbox: str, upstream_server) -> None:  # type: ignore[no-untyped-def]
    port = upstream_server.port
    script = (
        "import socket\n"
        f"for host, port in [('127.0.0.1', {port}), ('1.1.1.1', 80)]:\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=3); print('connected', host)\n"
        "    except OSError as e:\n"
        "        print('refused', host, type(e).__name__)\n"
    )
    result = await run(backend, sandbox, f'python3 -c "{script}"')
    assert "connected" not in result.stdout
    assert result.stdout.count("refused") == 2
    interfaces = await run(backend, sandbox, "cat /proc/net/dev")
    assert interfaces.exit_code == 0 and "lo:" in interfaces.stdout and "eth" not in interfaces.stdout


async def test_proc_and_dev_work_and_no_capability_is_left(backend: SandboxBackend, sandbox: str) -> None:
    result = await run(backend, sandbox, "echo x > /dev/null && grep CapEff /proc/self/status && ps | wc -l")
    assert result.exit_code == 0 and "CapEff:\t0000000000000000" in result.stdout


async def test_host_files_and_other_sandboxes_are_invisible(backend: SandboxBackend, sandbox: str) -> None:
    other = await backend.create(SandboxSpec(sandbox_id=uuid.uuid4().hex[:12], user_id="v", image=IMAGE, limits=LIMITS))
    try:
        await run(backend, other, "echo secret > /workspace/marker-of-other")
        result = await run(
            backend, sandbox, "cat /etc/passwd; ls /work /root 2>&1; find / -name 'marker-of-other*' 2>/dev/null"
        )
        assert "postgres" not in result.stdout and "sandbox:x:1000" in result.stdout
        assert "marker-of-other" not in result.stdout.replace("find / -name", "")
        writes = await run(backend, sandbox, "touch /usr/x 2>&1; touch /etc/x 2>&1; echo done")
        assert "Read-only file system" in writes.stdout
    finally:
        await backend.destroy(other)


async def test_a_fork_bomb_is_contained(backend: SandboxBackend, sandbox: str) -> None:
    result = await run(backend, sandbox, "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived", timeout_s=8)
    assert result.exit_code is not None or result.timed_out
    after = await run(backend, sandbox, "echo alive", timeout_s=10)
    assert after.stdout.strip() == "alive" or after.timed_out  # the sandbox may be saturated, the engine is not
    assert await backend.ping()


async def test_a_memory_bomb_is_killed(backend: SandboxBackend, sandbox: str) -> None:
    result = await run(backend, sandbox, "python3 -c \"x = bytearray(1024 * 1024 * 1024); print('allocated')\"")
    assert result.exit_code == 137 or "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


async def test_a_command_past_its_timeout_is_killed(backend: SandboxBackend, sandbox: str) -> None:
    result = await run(backend, sandbox, "sleep 30; echo never", timeout_s=2)
    assert result.timed_out and result.exit_code is None and "never" not in result.stdout
    assert result.elapsed_ms < 10_000


async def test_huge_output_is_truncated(backend: SandboxBackend, sandbox: str) -> None:
    result = await run(backend, sandbox, "yes | head -c 5000000", max_output=100_000)
    assert result.truncated and len(result.stdout) == 100_000 and result.exit_code == 0


async def test_files_round_trip_and_listing(backend: SandboxBackend, sandbox: str) -> None:
    await backend.put_file(sandbox, "/workspace/a/b/data.bin", bytes(range(256)) * 10)
    assert await backend.get_file(sandbox, "/workspace/a/b/data.bin") == bytes(range(256)) * 10
    entries = await backend.list_dir(sandbox, "/workspace/a/b")
    assert [(e.name, e.type, e.size) for e in entries] == [("data.bin", "file", 2560)]
    owner = await run(backend, sandbox, "stat -c %u /workspace/a/b/data.bin; echo more >> /workspace/a/b/data.bin")
    assert owner.stdout.strip() == "1000" and owner.exit_code == 0


async def test_labelled_sandboxes_are_listed_and_destroyed(backend: SandboxBackend) -> None:
    ref = await backend.create(
        SandboxSpec(sandbox_id="lbl" + uuid.uuid4().hex[:8], user_id="u", image=IMAGE, limits=LIMITS)
    )
    assert [s.ref for s in await backend.list_labelled()] == [ref]
    await backend.destroy(ref)
    assert await backend.list_labelled() == []
    await backend.destroy(ref)  # destroying twice is fine


def test_the_default_image_setting_is_the_recipe_image() -> None:
    from services.settings import SandboxSettings

    assert SandboxSettings().image == IMAGE
