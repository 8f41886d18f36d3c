"""Runs shared by chat turns and generation jobs: batched event store, fan-out bus, stop signal."""

from services.runs.bus import InMemoryRunBus, RunBus, RunEvent
from services.runs.models import Run, RunStatus
from services.runs.service import RunHandle, RunService

__all__ = ["InMemoryRunBus", "Run", "RunBus", "RunEvent", "RunHandle", "RunService", "RunStatus"]
