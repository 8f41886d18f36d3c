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
from services.llm.tokens import CHARS_PER_TOKEN, message_tokens
from services.money import MICRO, to_credits
from services.runs import RunHandle

# The smallest answer worth starting: below this many tokens a call is refused with 402.
MIN_COMPLETION_TOKENS = 16
# A call's credits are held in steps (see hold_step_tokens): an eighth of the model's largest answer, between
# these bounds.
HOLD_STEP_SHARE = 8
MAX_HOLD_STEP_TOKENS = 256
M = TypeVar("M", bound=BaseModel)


def hold_step_tokens(model: ModelInfo) -> int:
    """Completion tokens a call's first hold covers, and each extension adds: an eighth of the model's largest
    answer, at least :data:`MIN_COMPLETION_TOKENS` and at most :data:`MAX_HOLD_STEP_TOKENS`.

    A call's cost is known only when it ends. Holding what its longest answer could cost lets one call take a
    balance that pays for many real answers (most answers are a small part of the model's maximum), so the first
    hold covers the prompt and what an answer is expected to need — this step — and grows by a step while the
    answer streams. A call never holds more than about a step past what it used, and an answer that runs to the
    model's maximum costs at most eight extensions (one small write each) for most models.
    """
    share = model.max_output_tokens // HOLD_STEP_SHARE
    return max(MIN_COMPLETION_TOKENS, min(MAX_HOLD_STEP_TOKENS, share))


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
    """Every model call, paid from its payer's balance.

    Credits are held in steps: the first hold covers the prompt and :func:`hold_step_tokens` of answer (402 when
    the balance cannot pay for the prompt and :data:`MIN_COMPLETION_TOKENS`); while the answer streams, the hold is
    extended by a step whenever the tokens streamed come within a quarter step of what it covers. When the
    balance cannot pay for one more token, the call is cut where the hold ends and its answer ends with
    ``finish_reason="length"``. When the call ends, the hold is settled with the real cost.
    """

    def __init__(
        self, *, db: Database, models: ModelRegistry, credits: CreditService, hold_step: int | None = None
    ) -> None:
        """``hold_step`` replaces :func:`hold_step_tokens` for every model (tests, deployments that know better)."""
        self._db = db
        self._models = models
        self._credits = credits
        self._hold_step = hold_step

    def step_tokens(self, model: ModelInfo) -> int:
        return self._hold_step if self._hold_step is not None else hold_step_tokens(model)

    async def hold_for_call(
        self,
        user_id: str,
        model: ModelInfo,
        messages: list[dict[str, Any]],
        *,
        cause_id: str,
        session: AsyncSession | None = None,
    ) -> Hold:
        """The first hold of a call on ``messages``, taken ahead (pass it to :meth:`stream` as ``hold=``), inside
        the caller's transaction when ``session`` is given: work refused for want of credits (402) then stores
        nothing. The hold is settled or released by the call it is passed to."""
        prompt_tokens = sum(message_tokens(m) for m in messages)
        return await self._first_hold(user_id, model, prompt_tokens, self.max_tokens(model, messages),
                                      cause_id=cause_id, session=session)  # fmt: skip

    async def release(self, hold: Hold) -> None:
        """Give back a hold taken by :meth:`hold_for_call` that no call took over."""
        await self._credits.release(hold)

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
        hold: Hold | None = None,
        temperature: float | None = None,
        frequency_penalty: float | None = None,
    ) -> tuple[CallResult, CallUsage]:
        """One streamed call. ``on_delta`` sees each text delta as it arrives. A stop request cancels the call
        at once: what arrived is paid and reported, then :class:`CallStoppedError` is raised. ``hold`` is a hold
        taken ahead by :meth:`hold_for_call`; the call owns it from here (it is grown, settled or released).
        ``temperature`` overrides the model's own (structured output is always at 0)."""
        prompt_estimate = sum(message_tokens(m) for m in messages)
        max_tokens = self.max_tokens(model, messages)
        try:
            client = await self._models.client_for(model)
            meter = await self._meter(payer, model, prompt_estimate, max_tokens, hold)
        except BaseException:
            if hold is not None:
                await self._credits.release(hold)
            raise
        # Only the local model gets the penalty (some providers' reasoning models refuse it), counted over the whole
        # answer (llama.cpp counts repeats over the last 64 tokens unless told otherwise).
        penalty = frequency_penalty if model.local else None
        window = {"repeat_last_n": 4096} if penalty else None
        request = ChatRequest(model=model.id, messages=messages, max_tokens=max_tokens, tools=tools,
                              response_format=response_format,
                              temperature=0 if response_format else
                              (temperature if temperature is not None else model.temperature),
                              seed=model.seed, frequency_penalty=penalty, extra_body=window)  # fmt: skip
        result: CallResult | None = None

        async def consume() -> None:
            nonlocal result
            async with contextlib.aclosing(client.stream(request)) as stream:  # type: ignore[type-var]
                async for item in stream:
                    if isinstance(item, TextDelta):
                        if not await meter.admit(item):
                            # The balance cannot pay for this delta: end before it, as a provider ends at
                            # max_tokens; what was shown is what is paid.
                            result = CallResult(finish_reason="length", prompt_tokens=prompt_estimate,
                                                completion_tokens=meter.chunks, text=meter.text)  # fmt: skip
                            return
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
            await self._credits.release(meter.hold)
            raise
        finally:
            stopper.cancel()
        if not consumer.done():
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            # The provider's usage never comes for a cancelled call: count what arrived.
            raise CallStoppedError(await self._settle(payer, model, meter.hold, prompt_estimate, meter.chunks))
        if (error := consumer.exception()) is not None:
            await self._credits.release(meter.hold)
            raise error
        if result is None:
            await self._credits.release(meter.hold)
            raise UpstreamUnavailableError(f"{model.provider} ended the answer without a result")
        usage = await self._settle(payer, model, meter.hold, result.prompt_tokens, result.completion_tokens)
        if payer.run.stop_requested:
            raise CallStoppedError(usage)
        return result, usage

    async def complete_json(
        self,
        payer: Payer,
        model: ModelInfo,
        messages: list[dict[str, Any]],
        output: type[M],
        *,
        retries: int = 2,
        frequency_penalty: float | None = None,
    ) -> M:
        """A structured answer: the model is constrained to ``output``'s JSON schema (the local model too) and
        asked again, with the problem, when what it returns does not validate. Every attempt is paid.
        ``frequency_penalty`` keeps the small local model from looping in long answers (a script's lines); other
        models do not get it."""
        schema = output.model_json_schema()
        response_format = {"type": "json_schema",
                           "json_schema": {"name": output.__name__[:64], "schema": schema, "strict": True}}  # fmt: skip
        attempt_messages = list(messages)
        problem = ""
        for _attempt in range(retries + 1):
            result, _usage = await self.stream(payer, model, attempt_messages, response_format=response_format,
                                               frequency_penalty=frequency_penalty)  # fmt: skip
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

    async def _first_hold(
        self,
        user_id: str,
        model: ModelInfo,
        prompt_tokens: int,
        max_tokens: int,
        *,
        cause_id: str,
        session: AsyncSession | None = None,
    ) -> Hold:
        """Hold the prompt and a step of answer, or less down to a minimal answer (402 below it)."""
        most, least = self._first_bounds(model, prompt_tokens, max_tokens)
        return await self._credits.hold(user_id, at_most=most, at_least=least, cause_type="run", cause_id=cause_id,
                                        session=session)  # fmt: skip

    async def _meter(
        self, payer: Payer, model: ModelInfo, prompt_tokens: int, max_tokens: int, hold: Hold | None
    ) -> _Meter:
        """The hold of this call, taken or (when one was taken ahead for other messages) topped up to a step."""
        if hold is None:
            hold = await self._first_hold(payer.user_id, model, prompt_tokens, max_tokens, cause_id=payer.run.run_id)
        else:
            most, least = self._first_bounds(model, prompt_tokens, max_tokens)
            if hold.amount_micro < most:
                hold = await self._credits.extend(hold, at_most=most - hold.amount_micro,
                                                  at_least=max(0, least - hold.amount_micro))  # fmt: skip
        return _Meter(self._credits, model, hold, prompt_tokens, min(max_tokens, self.step_tokens(model)))

    def _first_bounds(self, model: ModelInfo, prompt_tokens: int, max_tokens: int) -> tuple[int, int]:
        """What a call's first hold covers: at most the prompt and a step of answer, at least a minimal answer."""
        step = min(max_tokens, self.step_tokens(model))
        return (price_micro(model, prompt_tokens, step),
                price_micro(model, prompt_tokens, min(MIN_COMPLETION_TOKENS, max_tokens)))  # fmt: skip

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


class _Meter:
    """What one streaming call has used against what its hold covers; grows the hold a step at a time.

    Tokens are counted from what arrived: the chunks (providers send about one token each), or a quarter of
    the characters when that is more (a provider that sends several tokens a chunk is not under-held).
    """

    def __init__(self, credits: CreditService, model: ModelInfo, hold: Hold, prompt_tokens: int, step: int) -> None:
        self._credits = credits
        self._model = model
        self.hold = hold
        self._prompt_tokens = prompt_tokens
        self._step = max(step, 1)
        self.chunks = 0
        self._chars = 0
        self._text: list[str] = []
        self._covered = self._tokens_covered(hold.amount_micro)
        self._tried_at: int | None = None

    @property
    def text(self) -> str:
        return "".join(self._text)

    async def admit(self, delta: TextDelta) -> bool:
        """Count ``delta`` in when the hold covers it, extending the hold by a step once what is used comes within
        a quarter step of its end (and again if the delta would pass it: other work may have given credits back
        since). False, counting nothing, when the balance cannot pay for it."""
        chunks, chars = self.chunks + 1, self._chars + len(delta.text)
        used = max(chunks, chars // CHARS_PER_TOKEN)
        if self._covered is not None:  # None: completions are free
            # Asked once a step near its end (a balance that ran out is not asked every token), and whenever the
            # delta would pass what is covered.
            near_end = used + self._step // 4 >= self._covered
            if (near_end and self._tried_at != self._covered) or used > self._covered:
                self._tried_at = self._covered
                await self._extend(used)
            if used > self._covered:
                return False
        self.chunks, self._chars = chunks, chars
        if delta.kind == "content":
            self._text.append(delta.text)
        return True

    async def _extend(self, used: int) -> None:
        assert self._covered is not None
        target = price_micro(self._model, self._prompt_tokens, max(self._covered, used) + self._step)
        if target <= self.hold.amount_micro:
            return
        try:
            self.hold = await self._credits.extend(self.hold, at_most=target - self.hold.amount_micro, at_least=0)
        except InsufficientCreditsError:  # the hold lapsed
            return
        self._covered = self._tokens_covered(self.hold.amount_micro)

    def _tokens_covered(self, amount_micro: int) -> int | None:
        """The most completion tokens ``amount_micro`` pays for besides the prompt; None when they are free."""
        if self._model.price_completion_per_1k <= 0:
            return None
        per_token = Decimal(str(self._model.price_completion_per_1k)) * MICRO / 1000
        tokens = max(0, int((amount_micro - price_micro(self._model, self._prompt_tokens, 0)) / per_token))
        while tokens > 0 and price_micro(self._model, self._prompt_tokens, tokens) > amount_micro:
            tokens -= 1
        while price_micro(self._model, self._prompt_tokens, tokens + 1) <= amount_micro:
            tokens += 1
        return tokens
