"""The agent loop: model call → tool calls → tool results → model call …, streaming every step as run events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from services.chat.history import message_tokens
from services.chat.metering import Meter, Reservation
from services.chat.tools import Tool, ToolContext
from services.errors import InsufficientCreditsError, UpstreamUnavailableError
from services.llm.registry import ModelRegistry
from services.llm.schemas import CallResult, ChatRequest, ModelInfo, StreamItem, TextDelta, ToolCallRequest
from services.money import to_credits
from services.runs.service import RunHandle

log = logging.getLogger(__name__)
MAX_TOOL_OUTPUT_CHARS = 16_000


@dataclass
class Turn:
    """One turn to run: who, where, with what model, history and tools."""

    run: RunHandle
    user_id: str
    session_id: str
    model: ModelInfo
    messages: list[dict[str, Any]]
    tools: list[Tool]
    max_tool_rounds: int


@dataclass
class TurnOutcome:
    parts: list[dict[str, Any]] = field(default_factory=list)
    status: str = "complete"  # complete | cancelled | failed
    finish_reason: str = "stop"
    error_code: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    credits_micro: int = 0
    balance: Decimal | None = None

    def add_text(self, text: str, kind: str = "text") -> None:
        if self.parts and self.parts[-1]["type"] == kind:
            self.parts[-1]["text"] += text
        else:
            self.parts.append({"type": kind, "text": text})


class CancelledTurnError(Exception):
    """The user stopped the run."""


class AgentLoop:
    def __init__(self, *, models: ModelRegistry, meter: Meter) -> None:
        self._models = models
        self._meter = meter

    async def run(self, turn: Turn) -> TurnOutcome:
        outcome = TurnOutcome()
        started = time.monotonic()
        messages = list(turn.messages)
        try:
            await self._rounds(turn, messages, outcome)
        except CancelledTurnError:
            outcome.status, outcome.finish_reason = "cancelled", "cancelled"
        except (UpstreamUnavailableError, InsufficientCreditsError) as exc:
            outcome.status, outcome.error_code = "failed", exc.code
            self._total(turn, outcome)
            turn.run.emit("error", {"code": exc.code, "message": exc.message})
            return outcome
        except Exception:
            log.exception("turn %s failed", turn.run.run_id)
            outcome.status, outcome.error_code = "failed", "internal"
            self._total(turn, outcome)
            turn.run.emit("error", {"code": "internal", "message": "the turn failed; try again"})
            return outcome
        self._total(turn, outcome)
        turn.run.emit(
            "done", {"finish_reason": outcome.finish_reason, "elapsed_ms": round((time.monotonic() - started) * 1000)}
        )
        return outcome

    def _total(self, turn: Turn, outcome: TurnOutcome) -> None:
        turn.run.emit(
            "usage",
            {
                "scope": "total",
                "prompt_tokens": outcome.prompt_tokens,
                "completion_tokens": outcome.completion_tokens,
                "credits": float(to_credits(outcome.credits_micro)),
                "balance": None if outcome.balance is None else float(outcome.balance),
            },
        )

    async def _rounds(self, turn: Turn, messages: list[dict[str, Any]], outcome: TurnOutcome) -> None:
        native = turn.model.native_tools
        routed: set[tuple[str, str]] = set()
        for round_number in range(turn.max_tool_rounds + 1):
            tools_allowed = bool(turn.tools) and round_number < turn.max_tool_rounds
            if tools_allowed and not native:
                calls = await self._route(turn, messages, outcome)
                # A router that asks again for a call it already made is looping: answer with what it has.
                if calls and all((c.name, _canonical(c.arguments)) in routed for c in calls):
                    calls = []
                routed |= {(c.name, _canonical(c.arguments)) for c in calls}
                if calls:
                    await self._run_tools(turn, calls, messages, outcome, native=False)
                    continue
                tools_allowed = False
            result = await self._call(turn, messages, outcome, tools=turn.tools if tools_allowed else None)
            if result.tool_calls and tools_allowed:
                await self._run_tools(turn, result.tool_calls, messages, outcome, native=True, text=result.text)
                continue
            if result.tool_calls:
                outcome.finish_reason = "tool_limit"
                return
            outcome.finish_reason = "length" if result.finish_reason == "length" else "stop"
            return
        outcome.finish_reason = "tool_limit"

    # -- model calls ---------------------------------------------------------------------------

    def _max_tokens(self, turn: Turn, messages: list[dict[str, Any]]) -> int:
        used = sum(message_tokens(m) for m in messages)
        return max(16, min(turn.model.max_output_tokens, turn.model.context_window - used))

    async def _call(
        self,
        turn: Turn,
        messages: list[dict[str, Any]],
        outcome: TurnOutcome,
        *,
        tools: list[Tool] | None = None,
        response_format: dict[str, Any] | None = None,
        emit_text: bool = True,
    ) -> CallResult:
        """One streamed model call; a stop request cancels it at once, keeping what arrived."""
        client = await self._models.client_for(turn.model)
        prompt_estimate = sum(message_tokens(m) for m in messages)
        reservation = await self._meter.reserve(
            user_id=turn.user_id, run_id=turn.run.run_id, model=turn.model, prompt_tokens=prompt_estimate,
            max_tokens=self._max_tokens(turn, messages),
        )  # fmt: skip
        request = ChatRequest(
            model=turn.model.id,
            messages=messages,
            max_tokens=reservation.max_tokens,
            tools=[tool.openai_schema() for tool in tools] if tools else None,
            response_format=response_format,
            temperature=0 if response_format else None,
        )
        received: list[str] = []
        result: CallResult | None = None

        async def consume() -> None:
            nonlocal result
            async with contextlib.aclosing(client.stream(request)) as stream:
                async for item in stream:
                    result = self._on_item(turn, item, received, outcome, emit_text) or result

        consumer = asyncio.ensure_future(consume())
        stopper = asyncio.ensure_future(turn.run.wait_stop())
        try:
            await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not consumer.done():
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            # The provider's usage never comes for a cancelled call: count what arrived.
            await self._meter_call(turn, outcome, reservation, prompt_estimate, len(received))
            raise CancelledTurnError
        if consumer.exception() is not None:
            await self._meter.release(reservation)
            consumer.result()  # re-raises the upstream error
        assert result is not None
        await self._meter_call(turn, outcome, reservation, result.prompt_tokens, result.completion_tokens)
        if turn.run.stop_requested:
            raise CancelledTurnError
        return result

    def _on_item(
        self, turn: Turn, item: StreamItem, received: list[str], outcome: TurnOutcome, emit_text: bool
    ) -> CallResult | None:
        if isinstance(item, TextDelta):
            received.append(item.text)
            if emit_text:
                if item.kind == "reasoning":
                    outcome.add_text(item.text, "reasoning")
                    turn.run.emit("reasoning.delta", {"text": item.text})
                else:
                    outcome.add_text(item.text)
                    turn.run.emit("content.delta", {"text": item.text})
            return None
        return item

    async def _meter_call(
        self, turn: Turn, outcome: TurnOutcome, reservation: Reservation, prompt_tokens: int, completion_tokens: int
    ) -> None:
        metered = await self._meter.record_call(
            reservation=reservation,
            user_id=turn.user_id,
            session_id=turn.session_id,
            run_id=turn.run.run_id,
            model=turn.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
        outcome.prompt_tokens += prompt_tokens
        outcome.completion_tokens += completion_tokens
        outcome.credits_micro += metered.credits_micro
        outcome.balance = metered.balance
        turn.run.emit(
            "usage",
            {
                "scope": "call",
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "credits": float(to_credits(metered.credits_micro)),
                "balance": None if metered.balance is None else float(metered.balance),
            },
        )

    # -- tool routing for models without native tool calls ---------------------------------------

    async def _route(self, turn: Turn, messages: list[dict[str, Any]], outcome: TurnOutcome) -> list[ToolCallRequest]:
        """Ask the model, constrained to a JSON schema, whether the last message needs a tool."""
        names = [tool.name for tool in turn.tools]
        catalogue = "\n".join(
            f"- {tool.name}: {tool.description} Arguments schema: {json.dumps(tool.parameters)}" for tool in turn.tools
        )
        router_messages = [
            {
                "role": "system",
                "content": (
                    "You decide whether answering the user's last message needs a tool. Tools:\n"
                    f"{catalogue}\n"
                    'Reply with JSON only: {"tool": "<tool name>", "arguments": {...}} to call a tool, or '
                    '{"tool": "none", "arguments": {}} when no tool is needed or a tool result already answers it.'
                ),
            },
            *messages[1:],
        ]
        schema = {
            "type": "object",
            "properties": {"tool": {"type": "string", "enum": [*names, "none"]}, "arguments": {"type": "object"}},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        response_format = {"type": "json_schema", "json_schema": {"name": "route", "schema": schema, "strict": True}}
        result = await self._call(turn, router_messages, outcome, response_format=response_format, emit_text=False)
        try:
            decision = json.loads(result.text)
        except json.JSONDecodeError:
            return []
        tool = decision.get("tool") if isinstance(decision, dict) else None
        if tool not in names:
            return []
        arguments = decision.get("arguments") if isinstance(decision.get("arguments"), dict) else {}
        return [ToolCallRequest(call_id=f"call_{turn.run.run_id[-6:]}_{len(outcome.parts)}", name=tool,
                                arguments=json.dumps(arguments))]  # fmt: skip

    # -- tools ---------------------------------------------------------------------------------

    async def _run_tools(
        self,
        turn: Turn,
        calls: list[ToolCallRequest],
        messages: list[dict[str, Any]],
        outcome: TurnOutcome,
        *,
        native: bool,
        text: str = "",
    ) -> None:
        by_name = {tool.name: tool for tool in turn.tools}
        results: list[tuple[ToolCallRequest, dict[str, Any]]] = []
        for call in calls:
            tool = by_name.get(call.name)
            source = tool.source if tool else "unknown"
            call_part = {"type": "tool_call", "call_id": call.call_id, "name": call.name,
                         "arguments": call.arguments, "source": source}  # fmt: skip
            outcome.parts.append(call_part)
            turn.run.emit("tool_call", {k: v for k, v in call_part.items() if k != "type"})
            await turn.run.flush()
            result = await self._execute(turn, tool, call)
            outcome.parts.append({"type": "tool_result", **result})
            turn.run.emit("tool_result", result)
            await turn.run.flush()
            results.append((call, result))
            if turn.run.stop_requested:
                raise CancelledTurnError
        if native:
            messages.append(
                {
                    "role": "assistant",
                    "content": text or None,
                    "tool_calls": [
                        {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                        for c, _ in results
                    ],
                }
            )
            for call, result in results:
                body = result["output"] if result["ok"] else {"error": result.get("error")}
                messages.append(
                    {"role": "tool", "tool_call_id": call.call_id, "content": _clip(json.dumps(body, default=str))}
                )
        else:
            lines = [
                f"{call.name}({call.arguments}) returned "
                + _clip(json.dumps(result["output"] if result["ok"] else {"error": result.get("error")}, default=str))
                for call, result in results
            ]
            # One user message that restates the question: small models copy an assistant turn word for word.
            question = next((m["content"] for m in reversed(messages) if m["role"] == "user"
                             and not str(m["content"]).startswith("Tool results:")), "")  # fmt: skip
            messages.append({"role": "user", "content": "Tool results:\n" + "\n".join(lines)
                             + f"\n\nUsing these results, answer my question: {question}"})  # fmt: skip

    async def _execute(self, turn: Turn, tool: Tool | None, call: ToolCallRequest) -> dict[str, Any]:
        started = time.monotonic()

        def done(ok: bool, output: Any = None, error: str | None = None) -> dict[str, Any]:
            output = json.loads(json.dumps(output, default=str))  # events and messages hold JSON only
            result = {"call_id": call.call_id, "ok": ok, "output": output,
                      "elapsed_ms": round((time.monotonic() - started) * 1000)}  # fmt: skip
            if error is not None:
                result["error"] = error
            return result

        if tool is None:
            return done(False, error=f"unknown tool {call.name}")
        try:
            arguments = json.loads(call.arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            return done(False, error=f"invalid arguments: {exc}")
        cancel = asyncio.Event()
        context = ToolContext(turn.user_id, turn.session_id, turn.run.run_id, cancel, turn.run.emit)
        try:
            output = await asyncio.wait_for(tool.handler(arguments, context), timeout=tool.timeout_s)
        except TimeoutError:
            cancel.set()
            return done(False, error=f"timed out after {tool.timeout_s:g} s")
        except Exception as exc:  # a failing tool is reported to the model; the turn goes on
            return done(False, error=f"{type(exc).__name__}: {exc}"[:500])
        return done(True, output=output)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TOOL_OUTPUT_CHARS else text[:MAX_TOOL_OUTPUT_CHARS] + "…[truncated]"


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments
