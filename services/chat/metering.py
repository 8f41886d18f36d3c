"""Per-session usage (``agent_session_metrics``): each model call of a turn adds its tokens and credits."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.chat.models import SessionMetrics
from services.clock import Clock, utcnow
from services.llm.metered import CallUsage, Recorder


class SessionMetricsRecorder:
    def __init__(self, *, backend: str, clock: Clock = utcnow) -> None:
        self._backend = backend
        self._clock = clock

    def for_session(self, user_id: str, session_id: str) -> Recorder:
        """What a metered call runs inside its settle transaction for this session."""

        async def record(session: AsyncSession, usage: CallUsage) -> None:
            await self.add_in(session, user_id, session_id, usage)

        return record

    async def add_in(self, session: AsyncSession, user_id: str, session_id: str, usage: CallUsage) -> None:
        """One upsert into the session's metrics, inside the caller's transaction."""
        insert = pg_insert if self._backend == "postgresql" else sqlite_insert
        table = SessionMetrics.__table__  # type: ignore[attr-defined]
        now = self._clock()
        statement = insert(table).values(
            session_id=session_id, user_id=user_id, credits_micro=usage.credits_micro,
            total_prompt_tokens=usage.prompt_tokens, total_completion_tokens=usage.completion_tokens, updated_at=now,
        )  # fmt: skip
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.session_id],
            set_={
                "credits_micro": table.c.credits_micro + usage.credits_micro,
                "total_prompt_tokens": table.c.total_prompt_tokens + usage.prompt_tokens,
                "total_completion_tokens": table.c.total_completion_tokens + usage.completion_tokens,
                "updated_at": now,
            },
        )
        await (await session.connection()).execute(statement)
