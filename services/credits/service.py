"""Balances that never go negative: an append-only ledger, holds for running work, conditional updates only.

Every change is one conditional ``UPDATE`` of the account (``WHERE balance - held >= amount``) and, for
balance changes, one ledger insert, in the same transaction; zero rows updated means not enough credits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.auth.authz import require_admin
from services.auth.models import User
from services.auth.schemas import Principal
from services.clock import Clock, utcnow
from services.credits.models import CreditAccount, CreditHold, LedgerEntry
from services.credits.schemas import Balance, DailySpend, GrantRequest, LedgerEntryRead, StatementLine
from services.credits.watchers import BalanceWatchers, Listener
from services.db.database import Database
from services.db.pagination import Page, keyset_page
from services.errors import InsufficientCreditsError, NotFoundError
from services.ids import new_id
from services.instances import LiveInstances
from services.money import to_credits, to_micro
from services.periodic import Periodic
from services.references import References
from services.settings import CreditsSettings

log = logging.getLogger(__name__)
ACCOUNTS = CreditAccount.__table__  # type: ignore[attr-defined]
HOLDS = CreditHold.__table__  # type: ignore[attr-defined]
LEDGER = LedgerEntry.__table__  # type: ignore[attr-defined]
# What a cause reads as when nothing describes its id (its object is gone, or its capability is off).
CAUSE_FALLBACKS = {"run": "Model calls", "job": "Job", "sandbox": "Sandbox"}


@dataclass(frozen=True)
class Hold:
    """Credits reserved for one piece of work (a model call, a sandbox's minutes, a job's fee) until it is
    settled with its real cost or released. ``id`` is None when nothing was held (free work)."""

    id: str | None
    user_id: str
    amount_micro: int
    cause_type: str
    cause_id: str


@dataclass(frozen=True)
class Settlement:
    charged_micro: int
    balance_micro: int


def _entry(row: LedgerEntry) -> LedgerEntryRead:
    return LedgerEntryRead(
        id=row.id, kind=row.kind, amount=to_credits(row.amount_micro),
        balance_after=to_credits(row.balance_after_micro), cause_type=row.cause_type, cause_id=row.cause_id,
        reason=row.reason, created_at=row.created_at,
    )  # fmt: skip


def _line(row: sa.Row[Any], labels: dict[str, str]) -> StatementLine:
    return StatementLine(
        id=row.id, kind=row.kind, label=_label(row, labels), detail=_detail(row.entries, row.calls, row.fees),
        amount=to_credits(int(row.amount_micro)), balance_after=to_credits(row.balance_after_micro),
        entries=row.entries, cause_type=row.cause_type, cause_id=row.cause_id, created_at=row.created_at,
    )  # fmt: skip


def _label(row: sa.Row[Any], labels: dict[str, str]) -> str:
    if row.cause_type == "signup":
        return "Sign-up grant"
    if row.cause_type == "admin":
        return f"Grant by admin: {row.reason}" if row.reason else "Grant by admin"
    if row.cause_id in labels:
        return labels[row.cause_id]
    fallback = CAUSE_FALLBACKS.get(row.cause_type or "") or row.reason or row.cause_type or row.kind
    return str(fallback)[:1].upper() + str(fallback)[1:]


def _detail(entries: int, calls: int, fees: int) -> str | None:
    """What a line sums ("job fee, 3 model calls"); nothing for a single entry that is not a model call."""
    parts = ["job fee"] * bool(fees) + [f"{calls} model call{'s' * (calls != 1)}"] * bool(calls)
    rest = entries - calls - fees
    if rest > 1 or (rest and parts):
        parts.append(f"{rest} charge{'s' * (rest != 1)}")
    return ", ".join(parts) or None


class CreditService:
    def __init__(
        self,
        *,
        db: Database,
        settings: CreditsSettings,
        owner: str,
        references: References | None = None,
        clock: Clock = utcnow,
    ) -> None:
        """``owner`` is this instance's id: its holds are released by others only once its lease is gone.
        ``references`` names what charges paid for (chat titles, sandboxes) in :meth:`statement`."""
        self._db = db
        self._references = references or References()
        self._settings = settings
        self._owner = owner
        self._clock = clock
        self._sweeper = Periodic("credit-hold-sweeper", 60, self.release_expired)
        self._watchers = BalanceWatchers()

    async def start(self) -> None:
        self._sweeper.start()

    async def stop(self) -> None:
        await self._sweeper.stop()

    # -- accounts ----------------------------------------------------------------------------------

    async def open_account(self, user_id: str) -> None:
        """The account of a new user, with the signup grant (idempotent)."""
        async with self._db.transaction() as session:
            await self.ensure_account(session, user_id)

    async def ensure_account(self, session: AsyncSession, user_id: str) -> None:
        insert = pg_insert if self._db.backend == "postgresql" else sqlite_insert
        grant = to_micro(Decimal(str(self._settings.signup_grant)))
        statement = (
            insert(ACCOUNTS)
            .values(user_id=user_id, balance_micro=grant, held_micro=0, updated_at=self._clock())
            .on_conflict_do_nothing(index_elements=[ACCOUNTS.c.user_id])
            .returning(ACCOUNTS.c.user_id)
        )
        created = (await (await session.connection()).execute(statement)).first()
        if created is not None and grant > 0:
            session.add(self._ledger(user_id, "grant", grant, grant, cause_type="signup", reason="signup grant",
                                     idempotency_key="signup"))  # fmt: skip

    def _ledger(self, user_id: str, kind: str, amount: int, balance_after: int, **extra: str | None) -> LedgerEntry:
        return LedgerEntry(id=new_id("led"), user_id=user_id, kind=kind, amount_micro=amount,
                           balance_after_micro=balance_after, created_at=self._clock(), **extra)  # fmt: skip

    async def balance(self, user_id: str) -> Balance:
        async with self._db.transaction(readonly=True) as session:
            account = await session.get(CreditAccount, user_id)
        if account is None:
            await self.open_account(user_id)
            return await self.balance(user_id)
        return Balance(
            balance=to_credits(account.balance_micro),
            held=to_credits(account.held_micro),
            available=to_credits(account.balance_micro - account.held_micro),
        )

    async def balances(self, user_ids: list[str]) -> dict[str, Decimal]:
        async with self._db.transaction(readonly=True) as session:
            rows = (await session.exec(select(CreditAccount).where(col(CreditAccount.user_id).in_(user_ids)))).all()
        return {row.user_id: to_credits(row.balance_micro) for row in rows}

    # -- balance changes ---------------------------------------------------------------------------

    async def grant(self, actor: Principal, request: GrantRequest) -> LedgerEntryRead:
        """Admins only: add credits to a user."""
        require_admin(actor)
        amount = to_micro(request.amount)
        async with self._db.transaction() as session:
            user = await self._target(session, request)
            await self.ensure_account(session, user.id)
            statement = (
                sa.update(ACCOUNTS)
                .where(ACCOUNTS.c.user_id == user.id)
                .values(balance_micro=ACCOUNTS.c.balance_micro + amount, updated_at=self._clock())
                .returning(ACCOUNTS.c.balance_micro)
            )
            balance_after = (await (await session.connection()).execute(statement)).scalar_one()
            entry = self._ledger(user.id, "grant", amount, balance_after, cause_type="admin", reason=request.reason)
            session.add(entry)
            self._changed(session, [user.id])
        return _entry(entry)

    async def _target(self, session: AsyncSession, request: GrantRequest) -> User:
        if request.user_id is not None:
            user = await session.get(User, request.user_id)
        else:
            email = (request.email or "").strip().lower()
            user = (await session.exec(select(User).where(User.email == email))).first()
        if user is None:
            raise NotFoundError("user not found")
        return user

    async def charge(
        self,
        user_id: str,
        amount_micro: int,
        *,
        cause_type: str | None = None,
        cause_id: str | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> LedgerEntryRead:
        """Take ``amount_micro`` from what is available now; 402 when it is not there. Idempotent by key."""
        async with self._db.transaction() as session:
            await self.ensure_account(session, user_id)
            if idempotency_key is not None:
                done = (
                    await session.exec(
                        select(LedgerEntry).where(
                            LedgerEntry.user_id == user_id, LedgerEntry.idempotency_key == idempotency_key
                        )
                    )
                ).first()
                if done is not None:
                    return _entry(done)
            statement = (
                sa.update(ACCOUNTS)
                .where(
                    ACCOUNTS.c.user_id == user_id,
                    ACCOUNTS.c.balance_micro - ACCOUNTS.c.held_micro >= amount_micro,
                )
                .values(balance_micro=ACCOUNTS.c.balance_micro - amount_micro, updated_at=self._clock())
                .returning(ACCOUNTS.c.balance_micro)
            )
            balance_after = (await (await session.connection()).execute(statement)).scalar_one_or_none()
            if balance_after is None:
                raise InsufficientCreditsError(
                    "not enough credits", details={"needed": float(to_credits(amount_micro))}
                )
            entry = self._ledger(user_id, "charge", -amount_micro, balance_after, cause_type=cause_type,
                                 cause_id=cause_id, reason=reason, idempotency_key=idempotency_key)  # fmt: skip
            session.add(entry)
            self._changed(session, [user_id])
        return _entry(entry)

    # -- holds ---------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _within(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """The caller's transaction when it passes one (so a hold commits with what it pays for), else our own."""
        if session is not None:
            yield session
            return
        async with self._db.transaction() as own:
            yield own

    async def hold(
        self,
        user_id: str,
        *,
        at_most: int,
        at_least: int | None = None,
        cause_type: str,
        cause_id: str,
        ttl_s: float | None = None,
        session: AsyncSession | None = None,
    ) -> Hold:
        """Reserve as much as is available up to ``at_most`` (402 below ``at_least``, which defaults to all of it).

        Nothing is held for free work (``at_most <= 0``). The hold lapses after ``ttl_s`` (the settings' hold
        time by default) or when this instance dies; pass ``session`` to join the caller's transaction.
        """
        if at_most <= 0:
            return Hold(None, user_id, 0, cause_type, cause_id)
        least = at_most if at_least is None else at_least
        async with self._within(session) as tx:
            await self.ensure_account(tx, user_id)
            account = (
                await tx.exec(select(CreditAccount).where(CreditAccount.user_id == user_id).with_for_update())
            ).one()
            amount = min(at_most, account.balance_micro - account.held_micro)
            if amount < max(least, 0) or amount <= 0:
                raise InsufficientCreditsError(
                    "not enough credits for this request",
                    details={"available": float(to_credits(account.balance_micro - account.held_micro)),
                             "needed": float(to_credits(least))},
                )  # fmt: skip
            statement = (
                sa.update(ACCOUNTS)
                .where(ACCOUNTS.c.user_id == user_id, ACCOUNTS.c.balance_micro - ACCOUNTS.c.held_micro >= amount)
                .values(held_micro=ACCOUNTS.c.held_micro + amount, updated_at=self._clock())
            )
            if (await (await tx.connection()).execute(statement)).rowcount != 1:
                raise InsufficientCreditsError("not enough credits for this request")
            now = self._clock()
            row = CreditHold(id=new_id("hld"), user_id=user_id, amount_micro=amount, cause_type=cause_type,
                             cause_id=cause_id, owner_instance=self._owner, created_at=now,
                             expires_at=now + timedelta(seconds=ttl_s or self._settings.hold_ttl_s))  # fmt: skip
            tx.add(row)
            self._changed(tx, [user_id])
        return Hold(row.id, user_id, amount, cause_type, cause_id)

    async def extend(
        self,
        hold: Hold,
        *,
        at_most: int,
        at_least: int | None = None,
        ttl_s: float | None = None,
        session: AsyncSession | None = None,
    ) -> Hold:
        """Add to an open hold as much as is available, up to ``at_most`` (402 below ``at_least``, which defaults
        to all of it; with ``at_least=0`` nothing available returns the hold as it was), and renew its lapse time.
        Returns the hold as it now stands.

        For work whose cost grows as it runs (a streaming answer holds in steps). One transaction: the hold row
        is locked first (the order settle and release use), then the account grows by one conditional update
        (``WHERE balance - held >= amount``), so what is held never exceeds the balance, on SQLite and
        PostgreSQL alike and under any concurrency. A hold that lapsed, was settled or was released cannot grow
        (402). A hold of nothing (free work so far) becomes a hold of its own.
        """
        if at_most <= 0:
            return hold
        if hold.id is None:
            return await self.hold(hold.user_id, at_most=at_most, at_least=at_least, cause_type=hold.cause_type,
                                   cause_id=hold.cause_id, ttl_s=ttl_s, session=session)  # fmt: skip
        least = at_most if at_least is None else max(at_least, 0)
        async with self._within(session) as tx:
            row = (await tx.exec(select(CreditHold).where(CreditHold.id == hold.id).with_for_update())).first()
            if row is None:
                raise InsufficientCreditsError("the credits held for this work have lapsed")
            account = (
                await tx.exec(select(CreditAccount).where(CreditAccount.user_id == hold.user_id).with_for_update())
            ).one()
            available = account.balance_micro - account.held_micro
            amount = max(0, min(at_most, available))
            if amount < least:
                raise InsufficientCreditsError(
                    "not enough credits to go on",
                    details={"available": float(to_credits(available)), "needed": float(to_credits(least))},
                )
            if amount == 0:
                return hold
            connection = await tx.connection()
            statement = (
                sa.update(ACCOUNTS)
                .where(ACCOUNTS.c.user_id == hold.user_id, ACCOUNTS.c.balance_micro - ACCOUNTS.c.held_micro >= amount)
                .values(held_micro=ACCOUNTS.c.held_micro + amount, updated_at=self._clock())
            )
            if (await connection.execute(statement)).rowcount != 1:  # nothing written yet: safe to refuse
                raise InsufficientCreditsError("not enough credits to go on")
            expires_at = max(row.expires_at, self._clock() + timedelta(seconds=ttl_s or self._settings.hold_ttl_s))
            await connection.execute(
                sa.update(HOLDS).where(HOLDS.c.id == hold.id)
                .values(amount_micro=HOLDS.c.amount_micro + amount, expires_at=expires_at)
            )  # fmt: skip
            tx.expire(account)
            tx.expire(row)
            self._changed(tx, [hold.user_id])
        return replace(hold, amount_micro=hold.amount_micro + amount)

    async def settle(self, hold: Hold, cost_micro: int, *, session: AsyncSession | None = None) -> Settlement:
        """Release the hold and charge the real cost, never below zero and never into what other work holds.

        The cost is charged in full when what this hold reserved plus what is available covers it (it normally
        does: the hold reserved what the work was to cost); past that the rest is not charged, so the balance
        never goes negative and never below what is still held. A hold that already lapsed is simply not there
        to release.
        """
        async with self._within(session) as tx:
            await self.ensure_account(tx, hold.user_id)
            connection = await tx.connection()
            held = 0
            if hold.id is not None:
                released = await connection.execute(
                    sa.delete(HOLDS).where(HOLDS.c.id == hold.id).returning(HOLDS.c.amount_micro)
                )
                held = released.scalar_one_or_none() or 0
            account = (
                await tx.exec(select(CreditAccount).where(CreditAccount.user_id == hold.user_id).with_for_update())
            ).one()
            held_by_others = account.held_micro - held
            charged = max(0, min(cost_micro, account.balance_micro - held_by_others))
            statement = (
                sa.update(ACCOUNTS)
                .where(ACCOUNTS.c.user_id == hold.user_id,
                       ACCOUNTS.c.balance_micro - (ACCOUNTS.c.held_micro - held) >= charged)
                .values(balance_micro=ACCOUNTS.c.balance_micro - charged,
                        held_micro=ACCOUNTS.c.held_micro - held, updated_at=self._clock())
                .returning(ACCOUNTS.c.balance_micro)
            )  # fmt: skip
            balance_after = (await connection.execute(statement)).scalar_one()
            tx.expire(account)
            self._changed(tx, [hold.user_id])
            if charged > 0:
                tx.add(self._ledger(hold.user_id, "charge", -charged, balance_after, cause_type=hold.cause_type,
                                    cause_id=hold.cause_id))  # fmt: skip
        return Settlement(charged_micro=charged, balance_micro=balance_after)

    async def release(self, hold: Hold, *, session: AsyncSession | None = None) -> None:
        """Give the reserved credits back, charging nothing (the work failed or never started)."""
        if hold.id is not None:
            await self._release_where(HOLDS.c.id == hold.id, session=session)

    async def release_orphaned(self, live: LiveInstances) -> int:
        """Holds of instances that died: their work died with them."""
        released = await self._release_where(sa.or_(HOLDS.c.owner_instance.is_(None),
                                                    HOLDS.c.owner_instance.not_in(live.ids)))  # fmt: skip
        if released:
            log.warning("released %d credit holds of instances that are gone", released)
        return released

    async def release_expired(self) -> int:
        return await self._release_where(HOLDS.c.expires_at <= self._clock())

    async def _release_where(self, condition: sa.ColumnElement[bool], *, session: AsyncSession | None = None) -> int:
        """Delete the matching holds and give what they held back to their accounts; returns how many."""
        async with self._within(session) as tx:
            connection = await tx.connection()
            rows = (await connection.execute(
                sa.delete(HOLDS).where(condition).returning(HOLDS.c.user_id, HOLDS.c.amount_micro)
            )).all()  # fmt: skip
            released: dict[str, int] = defaultdict(int)
            for row in rows:
                released[row.user_id] += row.amount_micro
            for user_id, amount in released.items():
                await connection.execute(
                    sa.update(ACCOUNTS).where(ACCOUNTS.c.user_id == user_id)
                    .values(held_micro=ACCOUNTS.c.held_micro - amount)
                )  # fmt: skip
            self._changed(tx, released)
        return len(rows)

    # -- change notification -----------------------------------------------------------------------------

    def subscribe(self, user_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener(user_id)`` after each committed change of the user's balance or holds (grant, charge,
        hold, extend, settle, release); returns the function that unsubscribes. In this process only: see
        :class:`BalanceWatchers` (several instances need a shared bus, a later issue)."""
        return self._watchers.subscribe(user_id, listener)

    def _changed(self, session: AsyncSession, user_ids: Iterable[str]) -> None:
        """Announce these users' balances once ``session`` commits."""
        self._watchers.after_commit(session, user_ids)

    # -- reading -----------------------------------------------------------------------------------------

    async def history(self, user_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntryRead]:
        async with self._db.transaction(readonly=True) as session:
            rows, next_cursor = await keyset_page(
                session, select(LedgerEntry).where(LedgerEntry.user_id == user_id),
                created_at=LedgerEntry.created_at, row_id=LedgerEntry.id, limit=limit, cursor=cursor,
            )  # fmt: skip
        return Page(items=[_entry(row) for row in rows], next_cursor=next_cursor)

    async def statement(self, user_id: str, *, limit: int, cursor: str | None) -> Page[StatementLine]:
        """The ledger as people read it, newest first: the entries of one cause (a chat turn's model calls, a
        job's fee and calls, a sandbox's settlements) summed into one line, each line labelled by what it paid for.

        Entries without a cause (grants) stay lines of their own. Lines are keyed by their newest entry, so a turn
        still running moves to the top as it is charged. Sums cover the user's whole ledger (window functions,
        one query on both databases).
        """
        group = [LEDGER.c.kind, sa.func.coalesce(LEDGER.c.cause_id, LEDGER.c.id)]

        def of_type(cause_type: str) -> sa.ColumnElement[int]:
            return sa.func.sum(sa.case((LEDGER.c.cause_type == cause_type, 1), else_=0)).over(partition_by=group)

        newest_first = [LEDGER.c.created_at.desc(), LEDGER.c.id.desc()]
        lines = (
            sa.select(
                LEDGER.c.id, LEDGER.c.kind, LEDGER.c.cause_type, LEDGER.c.cause_id, LEDGER.c.reason,
                LEDGER.c.balance_after_micro, LEDGER.c.created_at,
                sa.func.sum(LEDGER.c.amount_micro).over(partition_by=group).label("amount_micro"),
                sa.func.count().over(partition_by=group).label("entries"),
                of_type("run").label("calls"),
                of_type("job").label("fees"),
                sa.func.row_number().over(partition_by=group, order_by=newest_first).label("newest"),
            )
            .where(LEDGER.c.user_id == user_id)
            .subquery()
        )  # fmt: skip
        async with self._db.transaction(readonly=True) as session:
            rows, next_cursor = await keyset_page(
                session, sa.select(lines).where(lines.c.newest == 1),
                created_at=lines.c.created_at, row_id=lines.c.id, limit=limit, cursor=cursor,
            )  # fmt: skip
        labels = await self._references.describe(user_id, [row.cause_id for row in rows if row.cause_id])
        return Page(items=[_line(row, labels) for row in rows], next_cursor=next_cursor)

    async def spend_by_day(self, user_id: str, *, days: int = 30) -> list[DailySpend]:
        since = self._clock() - timedelta(days=days)
        async with self._db.transaction(readonly=True) as session:
            rows = (
                await session.exec(
                    select(LedgerEntry).where(
                        LedgerEntry.user_id == user_id, LedgerEntry.kind == "charge", LedgerEntry.created_at >= since
                    )
                )
            ).all()
        totals: dict[date, int] = defaultdict(int)
        for row in rows:
            totals[row.created_at.date()] += -row.amount_micro
        first = since.date()
        return [DailySpend(day=first + timedelta(days=i), credits=to_credits(totals.get(first + timedelta(days=i), 0)))
                for i in range(days + 1)]  # fmt: skip

    async def ledger_sum(self, user_id: str) -> int:
        async with self._db.transaction(readonly=True) as session:
            statement = select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_micro), 0)).where(
                LedgerEntry.user_id == user_id
            )
            return int((await session.exec(statement)).one())
