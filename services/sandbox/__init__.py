"""Sandboxes: a backend protocol with a Docker engine implementation, and the lifecycle manager."""

from __future__ import annotations

import os
from pathlib import Path

from services.sandbox.base import SandboxBackend
from services.sandbox.service import SandboxService
from services.settings import SandboxSettings

# Where `scripts/dockerd start` puts agent-ui's own engine.
OWN_ENGINE_SOCKET = Path(os.environ.get("AGENT_UI_DOCKER_DIR", "/var/lib/agent-ui-docker")) / "docker.sock"


def docker_host(settings: SandboxSettings) -> str | None:
    """The engine to use: the setting, else DOCKER_HOST, else agent-ui's own engine, else the default socket."""
    if settings.docker_host:
        return settings.docker_host
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    if OWN_ENGINE_SOCKET.exists():
        return f"unix://{OWN_ENGINE_SOCKET}"
    return None


def make_backends(settings: SandboxSettings, *, instance: str, owner: str, data_dir: Path) -> list[SandboxBackend]:
    """The backends to try, in order: ``auto`` is Docker when an engine answers, else the local one.

    ``instance`` tells this deployment's sandboxes from others' on a shared engine or directory; ``owner`` is
    this process (see services.instances), which marks the sandboxes it starts.
    """
    from services.sandbox.backends.bwrap import LocalSandboxBackend
    from services.sandbox.backends.docker import DockerSandboxBackend

    local_dir = settings.local_dir or (
        Path("/var/lib/agent-ui-sandbox") if os.geteuid() == 0 else data_dir / "sandboxes"
    )
    docker = DockerSandboxBackend(docker_host=docker_host(settings), instance=instance, owner=owner)
    local = LocalSandboxBackend(root=local_dir / "workspaces", cache_dir=local_dir, instance=instance, owner=owner)
    choices: dict[str, list[SandboxBackend]] = {
        "auto": [docker, local], "docker": [docker], "local": [local], "none": []
    }  # fmt: skip
    return choices[settings.backend]


__all__ = ["SandboxBackend", "SandboxService", "docker_host", "make_backends"]
