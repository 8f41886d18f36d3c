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


def make_backend(settings: SandboxSettings, *, instance: str) -> SandboxBackend | None:
    """The backend settings choose; ``instance`` tells this app's sandboxes from others' on a shared engine."""
    if settings.backend == "docker":
        from services.sandbox.backends.docker import DockerSandboxBackend

        return DockerSandboxBackend(docker_host=docker_host(settings), instance=instance)
    return None


__all__ = ["SandboxBackend", "SandboxService", "docker_host", "make_backend"]
