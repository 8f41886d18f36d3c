"""The agent loop: model call → tool calls → tool results → model call …, streaming every step as run events."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from services.auth.schemas import Principal
from services.chat.citations import Citations, cited_numbers
from services.chat.text_calls import CallGate, parse_calls, without_tags
from services.credits import Hold
from services.errors import InsufficientCreditsError, UpstreamUnavailableError
from services.llm.metered import CallStoppedError, CallUsage, ModelCalls, Payer
from services.llm.schemas import CallResult, ModelInfo, TextDelta, ToolCallRequest
from services.money import to_credits
from services.runs import RunEvent
from services.runs.service import RunHandle
from services.tools import Citation, Tool, ToolContext, run_tool
from services.tools.base import failure_summary

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
    # Sampling for every call of the turn (None: the model's own); set for a regenerated answer.
    temperature: float | None = None
    # Calls the turn makes before the model is asked (a turn grounded in resources searches them first).
    first_calls: list[tuple[Tool, ToolCallRequest]] = field(default_factory=list)
    # The sources this turn's tools found, numbered in order (see ToolContext.cite).
    citations: Citations = field(default_factory=lambda: Citations())

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
        answered = False
        if turn.first_calls:
            tools = [tool for tool, _call in turn.first_calls]
            calls = [call for _tool, call in turn.first_calls]
            await self._run_tools(turn, calls, messages, outcome, native=native, tools=tools)
            answered = not native  # as after any tool round: a small model answers from the results
            if answered and self._said_by_results(turn, tools, outcome):
                return
        await self._model_rounds(turn, messages, outcome, answered=answered)
        self._attribute(turn, outcome)

    def _said_by_results(self, turn: Turn, tools: list[Tool], outcome: TurnOutcome) -> bool:
        """Tools that speak for themselves and all succeeded: their sentences are the answer (no model call)."""
        results = [part for part in outcome.parts if part["type"] == "tool_result"]
        if not tools or not all(tool.speaks_for_itself for tool in tools) or not all(r["ok"] for r in results):
            return False
        text = " ".join(str(result["summary"]) for result in results)
        outcome.add_text(text)
        turn.run.emit("content.delta", {"text": text})
        outcome.finish_reason = "stop"
        return True

    def _attribute(self, turn: Turn, outcome: TurnOutcome) -> None:
        """An answer drawn on sources but citing none (small models often forget): mark the source it drew on."""
        if not turn.citations.numbered:
            return
        text = "".join(part["text"] for part in outcome.parts if part["type"] == "text")
        if cited_numbers(text):
            return
        if (n := turn.citations.best_match(text)) is not None:
            marker = f" [{n}]"
            outcome.add_text(marker)
            turn.run.emit("content.delta", {"text": marker})

    async def _model_rounds(
        self, turn: Turn, messages: list[dict[str, Any]], outcome: TurnOutcome, *, answered: bool
    ) -> None:
        native = turn.model.native_tools
        for round_number in range(turn.max_tool_rounds + 1):
            offer = bool(turn.tools) and round_number < turn.max_tool_rounds and not answered
            if native:
                result = await self._call(turn, messages, outcome, tools=turn.tools if offer else None)
                calls = result.tool_calls
            else:
                result, calls = await self._call_with_text_calls(turn, messages, outcome, offer=offer)
            if calls and offer:
                await self._run_tools(turn, calls, messages, outcome, native=native, text=result.text)
                # A small model offered tools again tends to call them once more with made-up arguments, or the
                # wrong tool after a failure: it answers from the results (a failure included) instead.
                answered = not native
                continue
            if calls:
                outcome.finish_reason = "tool_limit"
                return
            outcome.finish_reason = "length" if result.finish_reason == "length" else "stop"
            return
        outcome.finish_reason = "tool_limit"

    async def _call_with_text_calls(
        self, turn: Turn, messages: list[dict[str, Any]], outcome: TurnOutcome, *, offer: bool
    ) -> tuple[CallResult, list[ToolCallRequest]]:
        """One call to a model that writes tool calls as text: prose streams as it comes, an answer that starts
        like a call is held. A held call of a tool on offer is returned; anything else held is asked for again
        without tools, and an answer without tools that still imitates a call gives way to what this turn's
        tools said. The user never sees call notation."""
        gate = CallGate(echoes=(RESULTS_HEADING[:16],))
        asked = with_tool_rules(messages) if offer else messages
        result = await self._call(turn, asked, outcome, tools=turn.tools if offer else None, gate=gate)
        if offer and result.tool_calls:
            return result, result.tool_calls
        if not gate.held:
            return result, []
        if offer:
            prefix = f"call_{turn.run.run_id[-6:]}_{len(outcome.parts)}"
            if calls := parse_calls(gate.text, turn.tools, id_prefix=prefix):
                return CallResult(finish_reason="tool_calls", prompt_tokens=result.prompt_tokens,
                                  completion_tokens=result.completion_tokens, tool_calls=calls), calls  # fmt: skip
            return await self._call_with_text_calls(turn, messages, outcome, offer=False)
        summaries = [str(p["summary"]) for p in outcome.parts
                     if p["type"] == "tool_result" and p.get("ok") and p.get("summary")]  # fmt: skip
        shown = "\n\n".join(summaries) if summaries else without_tags(gate.text)
        outcome.add_text(shown)
        turn.run.emit("content.delta", {"text": shown})
        return result, []

    # -- model calls ---------------------------------------------------------------------------

    async def _call(
        self,
        turn: Turn,
        messages: list[dict[str, Any]],
        outcome: TurnOutcome,
        *,
        tools: list[Tool] | None = None,
        gate: CallGate | None = None,
    ) -> CallResult:
        """One metered, streamed model call; a stop request cancels it at once, keeping what arrived. A ``gate``
        decides what of the answer's text is shown (see :mod:`services.chat.text_calls`)."""

        def show(text: str) -> None:
            if text:
                outcome.add_text(text)
                turn.run.emit("content.delta", {"text": text})

        def on_delta(delta: TextDelta) -> None:
            if delta.kind == "reasoning":
                outcome.add_text(delta.text, "reasoning")
                turn.run.emit("reasoning.delta", {"text": delta.text})
            else:
                show(gate.feed(delta.text) if gate is not None else delta.text)

        try:
            result, usage = await self._calls.stream(
                turn.payer, turn.model, messages, tools=[tool.openai_schema() for tool in tools] if tools else None,
                on_delta=on_delta, hold=turn.take_hold(), temperature=turn.temperature,
            )  # fmt: skip
        except CallStoppedError as stopped:
            _add(outcome, stopped.usage)
            raise CancelledTurnError from None
        _add(outcome, usage)
        if gate is not None:
            show(gate.end())
        return result

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
        tools: list[Tool] | None = None,
    ) -> None:
        """Run the calls (of ``tools``, by default the turn's), record and emit each, and give the results back to
        the model."""
        by_name = {tool.name: tool for tool in (turn.tools if tools is None else tools)}
        results: list[tuple[ToolCallRequest, dict[str, Any]]] = []
        for call in calls:
            tool = by_name.get(call.name)
            source = tool.source if tool else "unknown"
            call_part = {"type": "tool_call", "call_id": call.call_id, "name": call.name,
                         "arguments": call.arguments, "source": source}  # fmt: skip
            outcome.parts.append(call_part)
            turn.run.emit("tool_call", {k: v for k, v in call_part.items() if k != "type"})
            await turn.run.flush()
            result = await self._execute(turn, tool, call, outcome)
            outcome.parts.append({"type": "tool_result", **result})
            turn.run.emit("tool_result", result)
            await turn.run.flush()
            results.append((call, result))
            if turn.run.stop_requested:
                raise CancelledTurnError
        if not native:
            # Only what succeeded: told of a failure, a small model answers with the failure (or the call) again;
            # without it, it answers as if it had not tried (the failed call stays on the turn's record).
            succeeded = [(by_name.get(call.name), result["summary"]) for call, result in results if result["ok"]]
            # Passages to answer from go before the question, as the small models were trained to read context;
            # in a note after it they answer the note instead.
            if context := [summary for tool, summary in succeeded if tool is not None and tool.reads_as_context]:
                messages[-1] = with_context(messages[-1], context)
            if notes := [summary for tool, summary in succeeded if tool is None or not tool.reads_as_context]:
                messages.append(tool_note(notes))
            return
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
            messages.append({"role": "tool", "tool_call_id": call.call_id, "content": tool_message(result)})

    async def _execute(
        self, turn: Turn, tool: Tool | None, call: ToolCallRequest, outcome: TurnOutcome
    ) -> dict[str, Any]:
        def cite(citation: Citation) -> int:
            n, new = turn.citations.number(citation)
            if new:
                data = {"n": n, **citation.data}
                outcome.parts.append({"type": "citation", **data})
                turn.run.emit("citation", data)
            return n

        context = ToolContext(principal=turn.principal, run_id=turn.run.run_id, session_id=turn.session_id,
                              emit=turn.run.emit, cite=cite)  # fmt: skip
        done = await run_tool(tool, call.name, call.arguments, context, stop=turn.run.stop_signal)
        result: dict[str, Any] = {"call_id": call.call_id, "ok": done.ok, "output": done.output,
                                  "elapsed_ms": done.elapsed_ms}  # fmt: skip
        if done.error is not None:
            result["error"] = done.error
        result["summary"] = (tool.summary(call.arguments, done.ok, done.output, done.error) if tool is not None
                             else failure_summary(call.name, done.error))  # fmt: skip
        return result


def tool_message(result: dict[str, Any]) -> str:
    """A tool result as a model with native tool calls reads it: its output (or error) as JSON."""
    body = result.get("output") if result.get("ok") else {"error": result.get("error")}
    return _clip(json.dumps(body, default=str))


# When not to call a tool, for the small models: they call one for nearly anything when tools are on offer.
TOOL_RULES = (
    "Use a tool when the user's message needs what it does: a calculation with numbers, the current date or time, "
    "running code or a command. Answer directly, without a tool, for greetings, thanks, facts and general "
    "knowledge, explanations, advice, translations, writing text and writing code that the user did not ask to run."
)
RESULTS_HEADING = "Results from tools the assistant ran:"


def with_tool_rules(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    system, *rest = messages
    return [{**system, "content": f"{system['content']}\n\n{TOOL_RULES}"}, *rest]


def tool_note(summaries: list[str]) -> dict[str, Any]:
    """Tool results as the small local models read them: one sentence each in a system message after the question
    (shown their own call and a tool message, they answer with the call again; shown an assistant or user turn,
    they imitate it or answer it as a new question)."""
    lines = "".join(f"\n- {summary}" for summary in summaries)
    return {
        "role": "system",
        "content": f"{RESULTS_HEADING}{lines}\nAnswer the user's last message with these results; quote numbers "
        "exactly as given. Do not mention tools.",
    }


def with_context(question: dict[str, Any], context: list[str]) -> dict[str, Any]:
    """The question with what to answer it from written before it."""
    return {**question, "content": "\n\n".join(context) + f"\n\nQuestion: {question['content']}"}


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
        elif type_ in ("tool_call", "tool_result", "citation"):
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
