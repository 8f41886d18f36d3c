"""The agent loop: model call → tool calls → tool results → model call …, streaming every step as run events."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from services.auth.schemas import Principal
from services.credits import Hold
from services.errors import InsufficientCreditsError, UpstreamUnavailableError
from services.llm.metered import CallStoppedError, CallUsage, ModelCalls, Payer
from services.llm.schemas import CallResult, ModelInfo, TextDelta, ToolCallRequest
from services.money import to_credits
from services.runs import RunEvent
from services.runs.service import RunHandle
from services.tools import Tool, ToolContext, run_tool

log = logging.getLogger(__name__)
MAX_TOOL_OUTPUT_CHARS = 16_000


@dataclass
class Turn:
    """One turn to run: who, where, with what model, history and tools, and who pays."""

    run: RunHandle
    principal: Principal
    session_id: str
    model: ModelInfo
    messages: list[dict[str, Any]]
    tools: list[Tool]
    max_tool_rounds: int
    payer: Payer
    # The first call's credits, held when the turn was stored (see ChatService.start_turn); its first call
    # takes it over.
    hold: Hold | None = None

    @property
    def user_id(self) -> str:
        return self.principal.user.id

    def take_hold(self) -> Hold | None:
        hold, self.hold = self.hold, None
        return hold


@dataclass
class TurnOutcome:
    parts: list[dict[str, Any]] = field(default_factory=list)
    status: str = "complete"  # complete | cancelled | failed (| interrupted, rebuilt by fold_events)
    finish_reason: str = "stop"
    error_code: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    credits_micro: int = 0
    balance_micro: int | None = None

    def add_text(self, text: str, kind: str = "text") -> None:
        if self.parts and self.parts[-1]["type"] == kind:
            self.parts[-1]["text"] += text
        else:
            self.parts.append({"type": kind, "text": text})


class CancelledTurnError(Exception):
    """The user stopped the run."""


class AgentLoop:
    def __init__(self, *, calls: ModelCalls) -> None:
        self._calls = calls

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
                "balance": None if outcome.balance_micro is None else float(to_credits(outcome.balance_micro)),
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
        """One metered, streamed model call; a stop request cancels it at once, keeping what arrived."""

        def on_delta(delta: TextDelta) -> None:
            if not emit_text:
                return
            if delta.kind == "reasoning":
                outcome.add_text(delta.text, "reasoning")
                turn.run.emit("reasoning.delta", {"text": delta.text})
            else:
                outcome.add_text(delta.text)
                turn.run.emit("content.delta", {"text": delta.text})

        try:
            result, usage = await self._calls.stream(
                turn.payer, turn.model, messages, tools=[tool.openai_schema() for tool in tools] if tools else None,
                response_format=response_format, on_delta=on_delta, hold=turn.take_hold(),
            )  # fmt: skip
        except CallStoppedError as stopped:
            _add(outcome, stopped.usage)
            raise CancelledTurnError from None
        _add(outcome, usage)
        return result

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
        context = ToolContext(principal=turn.principal, run_id=turn.run.run_id, session_id=turn.session_id,
                              emit=turn.run.emit)  # fmt: skip
        done = await run_tool(tool, call.name, call.arguments, context, stop=turn.run.stop_signal)
        result: dict[str, Any] = {"call_id": call.call_id, "ok": done.ok, "output": done.output,
                                  "elapsed_ms": done.elapsed_ms}  # fmt: skip
        if done.error is not None:
            result["error"] = done.error
        return result


def fold_events(events: Iterable[RunEvent]) -> TurnOutcome:
    """A turn rebuilt from its events, into the same parts the loop builds while it runs: what
    an answer keeps when the instance writing it died (the events persisted until then)."""
    outcome = TurnOutcome(status="interrupted", finish_reason="interrupted", error_code="interrupted")
    for event in events:
        type_, data = event.type, event.data
        if type_ == "content.delta":
            outcome.add_text(str(data.get("text", "")))
        elif type_ == "reasoning.delta":
            outcome.add_text(str(data.get("text", "")), "reasoning")
        elif type_ in ("tool_call", "tool_result"):
            outcome.parts.append({"type": type_, **data})
        elif type_ == "usage" and data.get("scope") == "call":
            outcome.prompt_tokens += int(data.get("prompt_tokens") or 0)
            outcome.completion_tokens += int(data.get("completion_tokens") or 0)
    return outcome


def _add(outcome: TurnOutcome, usage: CallUsage) -> None:
    outcome.prompt_tokens += usage.prompt_tokens
    outcome.completion_tokens += usage.completion_tokens
    outcome.credits_micro += usage.credits_micro
    outcome.balance_micro = usage.balance_micro


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TOOL_OUTPUT_CHARS else text[:MAX_TOOL_OUTPUT_CHARS] + "…[truncated]"


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments
