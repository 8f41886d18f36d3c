"""Turning stored messages into what a model reads, within its context window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from services.chat.agent import tool_message
from services.chat.models import ChatMessage
from services.llm.tokens import message_tokens
from services.tools.base import failure_summary


def text_of(parts: list[dict[str, Any]]) -> str:
    """What a message says: its text parts (tool use and reasoning left out)."""
    return "".join(part.get("text", "") for part in parts if part.get("type") == "text").strip()


def turn_messages(message: ChatMessage, *, native_tools: bool) -> list[dict[str, Any]]:
    """One stored message as the model reads it back: an answer's tool calls as assistant ``tool_calls`` and
    ``tool`` messages, as providers expect and as the chat template of the local models renders them (they were
    trained on it; a notation of ours in the text they would imitate). Models without native tool calls read
    each result as its one-sentence summary, as they did while answering."""
    if message.role != "assistant":
        return [{"role": message.role, "content": text_of(message.content)}]
    return native_turn(message.content, summaries=not native_tools)


def result_summary(result: dict[str, Any], name: str) -> str:
    """A stored result's sentence; results stored before summaries existed get a plain one."""
    if summary := result.get("summary"):
        return str(summary)
    if not result.get("ok"):
        return failure_summary(name, result.get("error"))
    return f"{name} returned {tool_message(result)}"


def native_turn(parts: list[dict[str, Any]], *, summaries: bool = False) -> list[dict[str, Any]]:
    """Rounds of (text, calls, results) as assistant messages with ``tool_calls`` and ``tool`` messages, then the
    answer. A call without a result (the turn was stopped) is left out: providers refuse unanswered calls."""
    entries: list[dict[str, Any]] = []
    text = ""
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []

    def close_round() -> None:
        nonlocal text, calls, results
        answered = {result["tool_call_id"] for result in results}
        kept = [call for call in calls if call["id"] in answered]
        if kept:
            entries.append({"role": "assistant", "content": text.strip() or None, "tool_calls": kept})
            entries.extend(results)
            text = ""
        calls, results = [], []

    for part in parts:
        kind = part.get("type")
        if kind in ("text", "tool_call") and results:
            close_round()
        if kind == "text":
            text += part.get("text", "")
        elif kind == "tool_call":
            calls.append({"id": part["call_id"], "type": "function",
                          "function": {"name": part.get("name", ""), "arguments": part.get("arguments") or "{}"}})
        elif kind == "tool_result" and (call := next((c for c in calls if c["id"] == part.get("call_id")), None)):
            content = result_summary(part, call["function"]["name"]) if summaries else tool_message(part)
            results.append({"role": "tool", "tool_call_id": part["call_id"], "content": content})
    close_round()
    if text.strip():
        entries.append({"role": "assistant", "content": text.strip()})
    return entries


class Linked(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def parent_id(self) -> str | None: ...


M = TypeVar("M", bound=Linked)


def branch(messages: Sequence[M], leaf_id: str | None) -> list[M]:
    """The path from the root to ``leaf_id`` through parent links (one branch of the conversation; empty for an
    unknown leaf). Stored messages and the API's messages alike."""
    by_id = {message.id: message for message in messages}
    path: list[M] = []
    current = by_id.get(leaf_id) if leaf_id else None
    while current is not None and len(path) <= len(messages):
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    return list(reversed(path))


def build_history(
    *, system_prompt: str, path: list[ChatMessage], budget_tokens: int, native_tools: bool = False
) -> list[dict[str, Any]]:
    """System prompt first, then the newest messages that fit the budget (oldest dropped first, a turn whole).

    Models without native tool calls (the small local ones) get the earlier turns as a transcript in a system
    message instead, then the question alone: shown earlier turns as turns, they repeat their pattern
    (a calculator call for every question after one used it, no tool at all after a chat without one), while a
    question on its own is routed as well as the first of a chat.
    """
    system = {"role": "system", "content": system_prompt}
    remaining = budget_tokens - message_tokens(system)
    kept: list[dict[str, Any]] = []
    for message in reversed(path):
        if message.role == "assistant" and message.status not in ("complete", "cancelled"):
            continue  # an answer that failed or is being written says nothing useful
        entries = turn_messages(message, native_tools=native_tools)
        if not entries:
            continue
        cost = sum(message_tokens(entry) for entry in entries)
        if cost > remaining and kept:
            break
        kept.extend(reversed(entries))
        remaining -= cost
    history = [system, *reversed(kept)]
    return history if native_tools else as_transcript(history)


TRANSCRIPT_HEADING = "The conversation so far:"
MAX_TRANSCRIPT_ENTRY_CHARS = 2000


def as_transcript(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The system prompt, the earlier turns written out, then the last question."""
    system, *turns = history
    if not turns:
        return [system]
    *earlier, question = turns
    lines = []
    for entry in earlier:
        if entry["role"] in ("user", "assistant") and entry.get("content"):
            text = str(entry["content"])
            if len(text) > MAX_TRANSCRIPT_ENTRY_CHARS:
                text = text[:MAX_TRANSCRIPT_ENTRY_CHARS] + "…"
            lines.append(f"{'User' if entry['role'] == 'user' else 'Assistant'}: {text}")
        elif entry["role"] == "tool":
            lines.append(f"(a tool said: {entry['content']})")
    if not lines:
        return [system, question]
    # In the question's message: the system prompt (and the tools the template appends to it) stay the same from
    # turn to turn, so the model server reuses their cached tokens; a system message of its own there makes the
    # small model stop calling tools.
    transcript = f"{TRANSCRIPT_HEADING}\n" + "\n".join(lines)
    return [system, {**question, "content": f"{transcript}\n\nMy new message: {question['content']}"}]
