"""The backend contract and attacks from inside a sandbox, on every real backend: the Docker engine and
bubblewrap (nothing mocked)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.errors import ConflictError, DomainError, NotFoundError
from services.sandbox.backends.bwrap import CGROUP_ROOT, CONTROLLERS, LocalSandboxBackend
from services.sandbox.backends.docker import DockerSandboxBackend
from services.sandbox.base import ExecResult, Limits, SandboxBackend, SandboxSpec, result_of
from services.sandbox.image import IMAGE

LIMITS = Limits(cpu=1.0, memory_mb=128, pids=64, disk_mb=64)
LOCAL_ROOT = Path("/var/lib/agent-ui-sandbox/test-workspaces")


@pytest.fixture(params=["docker", "local"])
async def backend(request: pytest.FixtureRequest) -> SandboxBackend:
    instance = "tests-" + uuid.uuid4().hex[:6]
    if request.param == "docker":
        return DockerSandboxBackend(docker_host=request.getfixturevalue("docker_engine"), instance=instance,
                                    owner="ins_tests")  # fmt: skip
    return LocalSandboxBackend(root=LOCAL_ROOT,
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


# -- failures leave nothing behind and speak our words (attack rows 2 and 10) --------------------------------------


def leftovers(backend: SandboxBackend, sandbox_id: str) -> list[str]:
    """Whatever of a sandbox the engine or the host still holds, found by its id (not through the backend)."""
    if isinstance(backend, DockerSandboxBackend):
        import docker

        client = docker.DockerClient(base_url=backend.address)
        name = f"agent-ui-{sandbox_id}"
        return [f"container {c.name}" for c in client.containers.list(all=True, filters={"name": name})] + [
            f"volume {v.name}" for v in client.volumes.list(filters={"name": name})
        ]
    ref = sandbox_id.replace("_", "")
    places = [LOCAL_ROOT / ref] + [CGROUP_ROOT / c / "agent-ui" / ref for c in CONTROLLERS]
    return [str(place) for place in places if place.exists()]


def refused_spec(backend: SandboxBackend) -> SandboxSpec:
    """A spec the engine takes up and then fails on, part-way through the create: 0.1% of a CPU is below what
    Docker starts a container with (after it created the volume and the container) and below what a cgroup
    takes (after the workspace and the cgroups were made)."""
    if isinstance(backend, LocalSandboxBackend) and not backend.uses_cgroups:
        pytest.skip("without cgroups the local backend applies no CPU limit to fail on")
    limits = Limits(cpu=0.001, memory_mb=128, pids=64, disk_mb=64)
    return SandboxSpec(sandbox_id="sbx_" + uuid.uuid4().hex[:12], user_id="u", image=IMAGE, limits=limits)


async def test_a_create_the_engine_fails_leaves_nothing_and_says_so_in_our_words(backend: SandboxBackend) -> None:
    spec = refused_spec(backend)
    with pytest.raises(DomainError) as raised:
        await backend.create(spec)
    assert raised.value.code == "sandbox_engine_error"  # not "the engine does not answer": it answered
    assert not re.search(r"[0-9a-f]{12}", raised.value.message) and "/" not in raised.value.message
    assert leftovers(backend, spec.sandbox_id) == []
    assert await backend.list_labelled() == []
    assert await backend.ping()  # the engine is fine


async def test_a_cancelled_create_leaves_nothing(backend: SandboxBackend) -> None:
    """The create runs in a thread, which a cancelled caller does not stop: what it makes must still go."""
    spec = SandboxSpec(sandbox_id="sbx_" + uuid.uuid4().hex[:12], user_id="u", image=IMAGE, limits=LIMITS)
    await backend.ping()  # the local backend unpacks its root filesystem once; the create is then quick
    creating = asyncio.ensure_future(backend.create(spec))
    await asyncio.sleep(0.01 if backend.kind == "docker" else 0)
    creating.cancel()
    with pytest.raises(asyncio.CancelledError):
        await creating
    await asyncio.sleep(3)  # time for a thread left running to finish making it
    assert leftovers(backend, spec.sandbox_id) == []
    assert await backend.list_labelled() == []


async def test_a_create_never_takes_over_or_removes_an_existing_sandbox(backend: SandboxBackend) -> None:
    spec = SandboxSpec(sandbox_id="sbx_" + uuid.uuid4().hex[:12], user_id="u", image=IMAGE, limits=LIMITS)
    ref = await backend.create(spec)
    try:
        await run(backend, ref, "echo kept > /workspace/mine")
        with pytest.raises(DomainError) as raised:
            await backend.create(spec)
        assert raised.value.code == "sandbox_exists"
        assert (await run(backend, ref, "cat /workspace/mine")).stdout == "kept\n"
    finally:
        await backend.destroy(ref)


async def test_a_sandbox_destroyed_under_a_call_is_409_or_404_in_our_words(backend: SandboxBackend) -> None:
    """A destroy racing a read (row 10): the engine's "Container <64 hex> is not running" must not come out."""
    spec = SandboxSpec(sandbox_id="sbx_" + uuid.uuid4().hex[:12], user_id="u", image=IMAGE, limits=LIMITS)
    ref = await backend.create(spec)
    await backend.put_file(ref, "/workspace/f.txt", b"x")
    if isinstance(backend, DockerSandboxBackend):  # the moment of a destroy when the container has stopped
        import docker

        docker.DockerClient(base_url=backend.address).containers.get(ref).stop(timeout=0)
        stopped: list[object] = [
            backend.list_dir(ref, "/workspace"),
            backend.resolve(ref, "/workspace/f.txt"),
            backend.disk_usage(ref),
            result_of(backend.exec_stream(ref, "true", timeout_s=5, workdir="/workspace", env={}, max_output=10)),
        ]
        for call in stopped:
            with pytest.raises(ConflictError) as conflict:
                await call  # type: ignore[misc]
            assert conflict.value.code == "sandbox_not_running" and ref[:12] not in conflict.value.message
    await backend.destroy(ref)
    gone: list[object] = [
        backend.list_dir(ref, "/workspace"),
        result_of(backend.exec_stream(ref, "true", timeout_s=5, workdir="/workspace", env={}, max_output=10)),
    ]
    for call in gone:
        with pytest.raises(NotFoundError) as missing:
            await call  # type: ignore[misc]
        assert ref[:12] not in missing.value.message and "/var/" not in missing.value.message


async def test_destroys_racing_each_other_both_succeed_and_leave_nothing(backend: SandboxBackend) -> None:
    """A user's destroy and the reaper's (or recovery's) at once: neither fails, and the volume does not stay
    behind because the other held its container when it tried."""
    for _ in range(3):
        spec = SandboxSpec(sandbox_id="sbx_" + uuid.uuid4().hex[:12], user_id="u", image=IMAGE, limits=LIMITS)
        ref = await backend.create(spec)
        await asyncio.gather(*(backend.destroy(ref) for _ in range(3)))
        assert leftovers(backend, spec.sandbox_id) == []


async def test_processes_and_tmp_live_between_commands(backend: SandboxBackend, sandbox: str) -> None:
    started = await run(backend, sandbox, "sleep 300 >/dev/null 2>&1 & echo $! > /tmp/sleeper; echo x > ~/kept")
    assert started.exit_code == 0
    later = await run(backend, sandbox, 'kill -0 "$(cat /tmp/sleeper)" && echo alive; cat /workspace/.home/kept')
    assert later.stdout == "alive\nx\n"
