"""Runs shared by chat turns and jobs: supervision, batched event store, fan-out bus, stop, progress, recovery."""

from services.runs.bus import InMemoryRunBus, RunBus, RunEvent
from services.runs.models import ACTIVE, TERMINAL, Run, RunStatus
from services.runs.schemas import Progress, RunError, RunKind, RunRead
from services.runs.service import RunHandle, RunService

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "InMemoryRunBus",
    "Progress",
    "Run",
    "RunBus",
    "RunError",
    "RunEvent",
    "RunHandle",
    "RunKind",
    "RunRead",
    "RunService",
    "RunStatus",
]
