"""Model calls paid from the balance: hold what ``max_tokens`` could cost, then charge what was used."""

from __future__ import annotations

from services.chat.metering import Metered, Reservation, SessionMetricsMeter, price_micro
from services.credits.service import CreditService
from services.db.database import Database
from services.errors import InsufficientCreditsError
from services.llm.schemas import ModelInfo
from services.money import MICRO, to_credits, to_micro

# The smallest answer worth starting: below this many tokens a call is refused with 402.
MIN_COMPLETION_TOKENS = 16


class CreditMeter:
    def __init__(self, *, db: Database, credits: CreditService, metrics: SessionMetricsMeter) -> None:
        self._db = db
        self._credits = credits
        self._metrics = metrics

    async def ensure_affordable(self, *, user_id: str, model: ModelInfo, prompt_tokens: int) -> None:
        needed = price_micro(model, prompt_tokens, MIN_COMPLETION_TOKENS)
        balance = await self._credits.balance(user_id)
        if needed > 0 and to_micro(balance.available) < needed:
            raise InsufficientCreditsError(
                "not enough credits to start this turn",
                details={"available": float(balance.available), "needed": float(to_credits(needed))},
            )

    async def reserve(
        self, *, user_id: str, run_id: str, model: ModelInfo, prompt_tokens: int, max_tokens: int
    ) -> Reservation:
        most = price_micro(model, prompt_tokens, max_tokens)
        if most == 0:
            return Reservation(max_tokens=max_tokens)
        least = price_micro(model, prompt_tokens, min(MIN_COMPLETION_TOKENS, max_tokens))
        hold_id, held = await self._credits.hold_up_to(
            user_id, at_most=most, at_least=least, cause_type="run", cause_id=run_id
        )
        if held >= most or model.price_completion_per_1k <= 0:
            return Reservation(max_tokens=max_tokens, hold_id=hold_id)
        per_token = model.price_completion_per_1k / 1000 * MICRO
        affordable = int((held - price_micro(model, prompt_tokens, 0)) / per_token)
        return Reservation(max_tokens=max(1, min(max_tokens, affordable)), hold_id=hold_id)

    async def release(self, reservation: Reservation) -> None:
        if reservation.hold_id is not None:
            await self._credits.release(reservation.hold_id)

    async def record_call(
        self, *, reservation: Reservation, user_id: str, session_id: str, run_id: str, model: ModelInfo,
        prompt_tokens: int, completion_tokens: int,
    ) -> Metered:  # fmt: skip
        cost = price_micro(model, prompt_tokens, completion_tokens)
        async with self._db.transaction() as session:
            charged, balance = await self._credits.settle_in(
                session, reservation.hold_id, user_id, cost, cause_type="run", cause_id=run_id
            )
            await self._metrics.add_in(session, user_id, session_id, charged, prompt_tokens, completion_tokens)
        return Metered(credits_micro=charged, balance=to_credits(balance))
