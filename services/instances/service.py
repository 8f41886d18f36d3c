"""The lease of this process, and which instances are alive.

Each process gets its own id at start and writes a heartbeat every ``lease_ttl_s / 3``. An instance is
dead when its heartbeat is older than ``lease_ttl_s``, or at once when it ran on this machine and its
process is gone (a restart after ``kill -9`` recovers without waiting). Work owned by a dead instance
(runs, credit holds, sandboxes) is recovered by whichever instance notices first; work of a live one
is never touched.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col, select

from services.clock import Clock, utcnow
from services.db.database import Database
from services.ids import new_id
from services.instances.models import Instance
from services.periodic import Periodic
from services.settings import InstanceSettings

log = logging.getLogger(__name__)
Recover = Callable[["LiveInstances"], Awaitable[object]]


def machine_id() -> str:
    """This machine and pid namespace (a container has its own): where a pid means the same process."""
    boot = Path("/proc/sys/kernel/random/boot_id")
    boot_id = boot.read_text().strip() if boot.exists() else "unknown-boot"
    try:
        namespace = str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        namespace = "pid:?"
    return f"{socket.gethostname()}/{boot_id}/{namespace}"[:128]


def process_started(pid: int) -> int | None:
    """The start time of a process in clock ticks since boot, or None when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])


@dataclass(frozen=True)
class LiveInstances:
    """The ids of instances alive at one moment. Work whose owner is not among them is orphaned."""

    ids: frozenset[str]

    def owns(self, owner: str | None) -> bool:
        return owner is not None and owner in self.ids


class InstanceLease:
    def __init__(self, *, db: Database, settings: InstanceSettings, clock: Clock = utcnow) -> None:
        self.id = new_id("ins")
        self._db = db
        self._ttl = timedelta(seconds=settings.lease_ttl_s)
        self._clock = clock
        self._machine = machine_id()
        self._recoveries: list[tuple[str, Recover]] = []
        self._recovering = False
        self._heartbeat = Periodic("instance-heartbeat", settings.lease_ttl_s / 3, self.beat)

    def on_recover(self, name: str, recover: Recover) -> None:
        """Run ``recover(live)`` once recovery begins and after every heartbeat, in registration order, so that
        work of instances that died is taken care of; ``name`` is for the logs."""
        self._recoveries.append((name, recover))

    async def start(self) -> None:
        """Take the lease (before this instance starts any work, so nobody takes that work for orphaned)."""
        async with self._db.transaction() as session:
            session.add(self._row())
        self._heartbeat.start()

    async def begin_recovery(self) -> None:
        """Recover the work of dead instances now and after every heartbeat (once this instance's services
        have started and can recover their part)."""
        self._recovering = True
        await self.recover()

    async def stop(self) -> None:
        """A clean stop gives the lease back: what this instance still owned is recovered by the next one."""
        await self._heartbeat.stop()
        async with self._db.transaction() as session:
            await session.exec(sa.delete(Instance).where(col(Instance.id) == self.id))

    async def beat(self) -> None:
        async with self._db.transaction() as session:
            renewed = await session.exec(
                sa.update(Instance).where(col(Instance.id) == self.id).values(heartbeat_at=self._clock())
            )
            if renewed.rowcount == 0:  # another instance took us for dead (a long pause): come back
                log.warning("instance %s lost its lease; registering again", self.id)
                session.add(self._row())
        if self._recovering:
            await self.recover()

    async def live(self) -> LiveInstances:
        """Instances alive now; the rows of dead ones are removed."""
        now = self._clock()
        async with self._db.transaction(readonly=True) as session:
            rows = list((await session.exec(select(Instance))).all())
        alive, dead = set(), []
        for row in rows:
            if row.id == self.id or (not self._gone_here(row) and row.heartbeat_at > now - self._ttl):
                alive.add(row.id)
            else:
                dead.append(row.id)
        if dead:
            log.warning("instances %s are gone; recovering their work", ", ".join(dead))
            async with self._db.transaction() as session:
                await session.exec(sa.delete(Instance).where(col(Instance.id).in_(dead)))
        return LiveInstances(frozenset(alive))

    def _row(self) -> Instance:
        now, pid = self._clock(), os.getpid()
        return Instance(id=self.id, machine=self._machine, pid=pid, pid_started=process_started(pid) or 0,
                        started_at=now, heartbeat_at=now)  # fmt: skip

    def _gone_here(self, row: Instance) -> bool:
        """An instance of this machine whose process no longer exists (or is another process by now)."""
        if row.machine != self._machine or not row.pid_started:
            return False
        return process_started(row.pid) != row.pid_started

    async def recover(self) -> None:
        live = await self.live()
        for name, recover in self._recoveries:
            try:
                await recover(live)
            except Exception:  # one failing recovery must not keep the others from running
                log.exception("recovering %s failed; trying again at the next heartbeat", name)
