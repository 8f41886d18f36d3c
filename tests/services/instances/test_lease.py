"""Instance leases: an instance is alive while it beats, dead once its lease ran out or, on this machine, once
its process is gone; recovery runs only for the dead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.db import Database
from services.instances import Instance, InstanceLease, LiveInstances
from services.instances.service import machine_id
from services.settings import InstanceSettings


def row(instance_id: str, *, machine: str, pid: int, pid_started: int, beat_ago_s: float) -> Instance:
    beat = datetime.now(UTC) - timedelta(seconds=beat_ago_s)
    return Instance(id=instance_id, machine=machine, pid=pid, pid_started=pid_started, started_at=beat,
                    heartbeat_at=beat)  # fmt: skip


async def test_alive_while_beating_dead_when_the_lease_ran_out_or_the_process_is_gone(db: Database) -> None:
    lease = InstanceLease(db=db, settings=InstanceSettings(lease_ttl_s=30))
    seen: list[LiveInstances] = []

    async def recover(live: LiveInstances) -> None:
        seen.append(live)

    lease.on_recover("test", recover)
    await lease.start()
    async with db.transaction() as session:
        session.add_all([
            row("ins_elsewhere_fresh", machine="other/boot/pid:[1]", pid=1, pid_started=5, beat_ago_s=5),
            row("ins_elsewhere_stale", machine="other/boot/pid:[1]", pid=2, pid_started=5, beat_ago_s=45),
            # On this machine, a pid that no process has (the instance was killed): dead at once.
            row("ins_here_killed", machine=machine_id(), pid=2**22 + 7, pid_started=12345, beat_ago_s=1),
        ])  # fmt: skip
    await lease.begin_recovery()
    assert seen[-1].ids == frozenset({lease.id, "ins_elsewhere_fresh"})
    assert seen[-1].owns(lease.id) and not seen[-1].owns(None) and not seen[-1].owns("ins_here_killed")
    async with db.transaction(readonly=True) as session:  # the dead ones' rows are gone
        assert await session.get(Instance, "ins_elsewhere_stale") is None
    await lease.beat()
    assert len(seen) == 2
    await lease.stop()
    async with db.transaction(readonly=True) as session:  # a clean stop gives the lease back
        assert await session.get(Instance, lease.id) is None
