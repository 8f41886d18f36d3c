from __future__ import annotations

from datetime import UTC, datetime

from services.chat.history import branch, build_history, flatten_parts
from services.chat.models import ChatMessage

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def message(id_: str, parent: str | None, role: str, text: str, status: str = "complete") -> ChatMessage:
    return ChatMessage(id=id_, session_id="s", user_id="u", parent_id=parent, role=role,
                       content=[{"type": "text", "text": text}], status=status, created_at=NOW)  # fmt: skip


def test_history_keeps_the_system_prompt_and_the_newest_messages_that_fit() -> None:
    path = [message(f"m{i}", f"m{i - 1}" if i else None, "user" if i % 2 == 0 else "assistant", f"{i}" * 400)
            for i in range(10)]  # fmt: skip
    history = build_history(system_prompt="sys", path=path, budget_tokens=450)
    assert history[0] == {"role": "system", "content": "sys"}
    kept = [entry["content"][0] for entry in history[1:]]
    assert kept == ["6", "7", "8", "9"]  # the oldest dropped first, order preserved
    everything = build_history(system_prompt="sys", path=path, budget_tokens=100_000)
    assert len(everything) == 11


def test_history_always_keeps_the_question_and_skips_failed_answers() -> None:
    path = [message("q1", None, "user", "first"), message("a1", "q1", "assistant", "broken", status="failed"),
            message("q2", "a1", "user", "x" * 10_000)]  # fmt: skip
    history = build_history(system_prompt="sys", path=path, budget_tokens=10)
    assert [entry["role"] for entry in history] == ["system", "user"] and history[1]["content"] == "x" * 10_000


def test_branch_follows_parents_from_the_leaf() -> None:
    messages = [message("q", None, "user", "q"), message("a1", "q", "assistant", "a1"),
                message("a2", "q", "assistant", "a2"), message("q2", "a2", "user", "q2")]  # fmt: skip
    assert [m.id for m in branch(messages, "q2")] == ["q", "a2", "q2"]
    assert [m.id for m in branch(messages, "a1")] == ["q", "a1"]


def test_tool_use_is_given_back_as_text() -> None:
    parts = [{"type": "tool_call", "call_id": "c", "name": "calculator", "arguments": '{"expression": "6*7"}'},
             {"type": "tool_result", "call_id": "c", "ok": True, "output": {"result": 42}},
             {"type": "text", "text": "It is 42."}]  # fmt: skip
    text = flatten_parts(parts)
    assert "calculator" in text and "42" in text and text.endswith("It is 42.")
