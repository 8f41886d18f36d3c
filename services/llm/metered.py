"""Model calls paid from the caller's balance: the one place that holds credits for a call, streams or completes
it (structured output by JSON schema included), races the run's stop, settles what was used and emits ``usage``.

Chat turns, generation jobs and anything else that calls a model go through :class:`ModelCalls`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.credits import CreditService, Hold
from services.db.database import Database
from services.errors import InsufficientCreditsError, UpstreamUnavailableError
from services.llm.registry import ModelRegistry
from services.llm.schemas import CallResult, ChatRequest, ModelInfo, TextDelta
from services.llm.tokens import estimate_tokens, message_tokens
from services.money import MICRO, to_credits
from services.runs import RunHandle

# The smallest answer worth starting: below this many tokens a call is refused with 402.
MIN_COMPLETION_TOKENS = 16
M = TypeVar("M", bound=BaseModel)


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
class CallUsage:
    prompt_tokens: int
    completion_tokens: int
    credits_micro: int
    balance_micro: int


# Called inside the transaction that settles a call: per-subject accounting (chat: the session's metrics).
Recorder = Callable[[AsyncSession, CallUsage], Awaitable[None]]


@dataclass(frozen=True)
class Payer:
    """Who pays for a call, the run it belongs to (its stop signal, its ``usage`` events) and, optionally,
    what else records the usage in the same transaction."""

    user_id: str
    run: RunHandle
    record: Recorder | None = None


class CallStoppedError(Exception):
    """The run was stopped during the call. What arrived was paid for and reported (``usage``)."""

    def __init__(self, usage: CallUsage) -> None:
        super().__init__("the run was stopped")
        self.usage = usage


class ModelCalls:
    def __init__(self, *, db: Database, models: ModelRegistry, credits: CreditService) -> None:
        self._db = db
        self._models = models
        self._credits = credits

    async def ensure_affordable(self, user_id: str, model: ModelInfo, prompt: str) -> None:
        """402 before any work starts when not even a minimal answer can be paid."""
        needed = price_micro(model, estimate_tokens(prompt), MIN_COMPLETION_TOKENS)
        balance = await self._credits.balance(user_id)
        if needed > 0 and to_credits(needed) > balance.available:
            raise InsufficientCreditsError(
                "not enough credits to start this",
                details={"available": float(balance.available), "needed": float(to_credits(needed))},
            )

    def max_tokens(self, model: ModelInfo, messages: list[dict[str, Any]]) -> int:
        used = sum(message_tokens(m) for m in messages)
        return max(16, min(model.max_output_tokens, model.context_window - used))

    async def stream(
        self,
        payer: Payer,
        model: ModelInfo,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
        on_delta: Callable[[TextDelta], object] | None = None,
    ) -> tuple[CallResult, CallUsage]:
        """One streamed call. ``on_delta`` sees each text delta as it arrives. A stop request cancels the call
        at once: what arrived is paid and reported, then :class:`CallStoppedError` is raised."""
        client = await self._models.client_for(model)
        prompt_estimate = sum(message_tokens(m) for m in messages)
        hold, max_tokens = await self._reserve(payer, model, prompt_estimate, self.max_tokens(model, messages))
        request = ChatRequest(model=model.id, messages=messages, max_tokens=max_tokens, tools=tools,
                              response_format=response_format,
                              temperature=0 if response_format else None)  # fmt: skip
        received = 0
        result: CallResult | None = None

        async def consume() -> None:
            nonlocal result, received
            async with contextlib.aclosing(client.stream(request)) as stream:  # type: ignore[type-var]
                async for item in stream:
                    if isinstance(item, TextDelta):
                        received += 1
                        if on_delta is not None:
                            on_delta(item)
                    else:
                        result = item

        consumer = asyncio.ensure_future(consume())
        stopper = asyncio.ensure_future(payer.run.wait_stop())
        try:
            await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            consumer.cancel()
            with contextlib.suppress(BaseException):
                await consumer
            await self._credits.release(hold)
            raise
        finally:
            stopper.cancel()
        if not consumer.done():
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            # The provider's usage never comes for a cancelled call: count what arrived.
            raise CallStoppedError(await self._settle(payer, model, hold, prompt_estimate, received))
        if (error := consumer.exception()) is not None:
            await self._credits.release(hold)
            raise error
        if result is None:
            await self._credits.release(hold)
            raise UpstreamUnavailableError(f"{model.provider} ended the answer without a result")
        usage = await self._settle(payer, model, hold, result.prompt_tokens, result.completion_tokens)
        if payer.run.stop_requested:
            raise CallStoppedError(usage)
        return result, usage

    async def complete_json(
        self, payer: Payer, model: ModelInfo, messages: list[dict[str, Any]], output: type[M], *, retries: int = 2
    ) -> M:
        """A structured answer: the model is constrained to ``output``'s JSON schema (the local model too) and
        asked again, with the problem, when what it returns does not validate. Every attempt is paid."""
        schema = output.model_json_schema()
        response_format = {"type": "json_schema",
                           "json_schema": {"name": output.__name__[:64], "schema": schema, "strict": True}}  # fmt: skip
        attempt_messages = list(messages)
        problem = ""
        for _attempt in range(retries + 1):
            result, _usage = await self.stream(payer, model, attempt_messages, response_format=response_format)
            try:
                return output.model_validate_json(result.text)
            except ValidationError as exc:
                problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            attempt_messages = [
                *messages,
                {"role": "assistant", "content": result.text},
                {"role": "user", "content": f"That JSON was not valid ({problem}). Reply again with JSON that "
                                            f"matches the schema: {json.dumps(schema)}"},
            ]  # fmt: skip
        raise UpstreamUnavailableError(f"{model.id} did not return valid JSON after {retries + 1} tries: {problem}",
                                       code="malformed_output")  # fmt: skip

    async def _reserve(
        self, payer: Payer, model: ModelInfo, prompt_tokens: int, max_tokens: int
    ) -> tuple[Hold, int]:
        """Hold what ``max_tokens`` could cost; when the balance covers less, lower ``max_tokens`` to what it
        covers (402 below a minimal answer)."""
        most = price_micro(model, prompt_tokens, max_tokens)
        least = price_micro(model, prompt_tokens, min(MIN_COMPLETION_TOKENS, max_tokens))
        hold = await self._credits.hold(payer.user_id, at_most=most, at_least=least, cause_type="run",
                                        cause_id=payer.run.run_id)  # fmt: skip
        if hold.amount_micro >= most or model.price_completion_per_1k <= 0:
            return hold, max_tokens
        per_token = model.price_completion_per_1k / 1000 * MICRO
        affordable = int((hold.amount_micro - price_micro(model, prompt_tokens, 0)) / per_token)
        return hold, max(1, min(max_tokens, affordable))

    async def _settle(
        self, payer: Payer, model: ModelInfo, hold: Hold, prompt_tokens: int, completion_tokens: int
    ) -> CallUsage:
        cost = price_micro(model, prompt_tokens, completion_tokens)
        async with self._db.transaction() as session:
            settled = await self._credits.settle(hold, cost, session=session)
            usage = CallUsage(prompt_tokens, completion_tokens, settled.charged_micro, settled.balance_micro)
            if payer.record is not None:
                await payer.record(session, usage)
        payer.run.emit("usage", {"scope": "call", "prompt_tokens": prompt_tokens,
                                 "completion_tokens": completion_tokens,
                                 "credits": float(to_credits(usage.credits_micro)),
                                 "balance": float(to_credits(usage.balance_micro))})  # fmt: skip
        return usage
