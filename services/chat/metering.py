"""What each model call costs. The agent loop reserves before a call and records after it, through ``Meter``.

``SessionMetricsMeter`` only keeps the per-session metrics; ``services.credits.CreditMeter`` adds holds
and charges against the user's balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.chat.models import SessionMetrics
from services.clock import Clock, utcnow
from services.db.database import Database
from services.llm.schemas import ModelInfo
from services.money import MICRO


def price_micro(model: ModelInfo, prompt_tokens: int, completion_tokens: int) -> int:
    """Micro-credits for one call, rounded half up to whole micro-credits."""
    exact = (
        (
            Decimal(prompt_tokens) * Decimal(str(model.price_prompt_per_1k))
            + Decimal(completion_tokens) * Decimal(str(model.price_completion_per_1k))
        )
        * MICRO
        / 1000
    )
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Reservation:
    """What a call may spend: its ``max_tokens`` (possibly lowered to what the balance covers)."""

    max_tokens: int
    hold_id: str | None = None


@dataclass(frozen=True)
class Metered:
    credits_micro: int
    balance: Decimal | None  # None while credits are not metered against a balance


class Meter(Protocol):
    async def ensure_affordable(self, *, user_id: str, model: ModelInfo, prompt_tokens: int) -> None:
        """Raise InsufficientCreditsError when not even a minimal call can be paid (before any work starts)."""
        ...

    async def reserve(
        self, *, user_id: str, run_id: str, model: ModelInfo, prompt_tokens: int, max_tokens: int
    ) -> Reservation: ...

    async def record_call(
        self, *, reservation: Reservation, user_id: str, session_id: str, run_id: str, model: ModelInfo,
        prompt_tokens: int, completion_tokens: int,
    ) -> Metered: ...  # fmt: skip

    async def release(self, reservation: Reservation) -> None: ...


class SessionMetricsMeter:
    """Adds each call's tokens and credits to ``agent_session_metrics``; no balance."""

    def __init__(self, *, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def ensure_affordable(self, *, user_id: str, model: ModelInfo, prompt_tokens: int) -> None:
        return None

    async def reserve(
        self, *, user_id: str, run_id: str, model: ModelInfo, prompt_tokens: int, max_tokens: int
    ) -> Reservation:
        return Reservation(max_tokens=max_tokens)

    async def release(self, reservation: Reservation) -> None:
        return None

    async def record_call(
        self, *, reservation: Reservation, user_id: str, session_id: str, run_id: str, model: ModelInfo,
        prompt_tokens: int, completion_tokens: int,
    ) -> Metered:  # fmt: skip
        micro = price_micro(model, prompt_tokens, completion_tokens)
        async with self._db.transaction() as session:
            await self.add_in(session, user_id, session_id, micro, prompt_tokens, completion_tokens)
        return Metered(credits_micro=micro, balance=None)

    async def add_in(
        self, session: AsyncSession, user_id: str, session_id: str, micro: int, prompt_tokens: int,
        completion_tokens: int,
    ) -> None:  # fmt: skip
        """One upsert into the session's metrics, inside the caller's transaction."""
        insert = pg_insert if self._db.backend == "postgresql" else sqlite_insert
        table = SessionMetrics.__table__  # type: ignore[attr-defined]
        statement = insert(table).values(
            session_id=session_id, user_id=user_id, credits_micro=micro, total_prompt_tokens=prompt_tokens,
            total_completion_tokens=completion_tokens, updated_at=self._clock(),
        )  # fmt: skip
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.session_id],
            set_={
                "credits_micro": table.c.credits_micro + micro,
                "total_prompt_tokens": table.c.total_prompt_tokens + prompt_tokens,
                "total_completion_tokens": table.c.total_completion_tokens + completion_tokens,
                "updated_at": self._clock(),
            },
        )
        await (await session.connection()).execute(statement)
