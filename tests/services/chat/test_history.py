from __future__ import annotations

from datetime import UTC, datetime

from services.chat.history import branch, build_history
from services.chat.models import ChatMessage

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def message(id_: str, parent: str | None, role: str, text: str, status: str = "complete") -> ChatMessage:
    return ChatMessage(id=id_, session_id="s", user_id="u", parent_id=parent, role=role,
                       content=[{"type": "text", "text": text}], status=status, created_at=NOW)  # fmt: skip


def test_history_keeps_the_system_prompt_and_the_newest_messages_that_fit() -> None:
    path = [message(f"m{i}", f"m{i - 1}" if i else None, "user" if i % 2 == 0 else "assistant", f"{i}" * 400)
            for i in range(10)]  # fmt: skip
    history = build_history(system_prompt="sys", path=path, budget_tokens=450, native_tools=True)
    assert history[0] == {"role": "system", "content": "sys"}
    kept = [entry["content"][0] for entry in history[1:]]
    assert kept == ["6", "7", "8", "9"]  # the oldest dropped first, order preserved
    everything = build_history(system_prompt="sys", path=path, budget_tokens=100_000, native_tools=True)
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


TOOL_TURN = [
    {"type": "tool_call", "call_id": "c1", "name": "calculator", "arguments": '{"expression": "6*7"}'},
    {"type": "tool_result", "call_id": "c1", "ok": True, "output": {"result": 42}, "summary": "6*7 = 42"},
    {"type": "text", "text": "It is 42."},
]


def tool_path() -> list[ChatMessage]:
    answer = message("a", "q", "assistant", "")
    answer.content = TOOL_TURN
    return [message("q", None, "user", "what is 6*7?"), answer, message("q2", "a", "user", "and halved?")]


def test_a_local_model_reads_earlier_turns_as_a_transcript_before_its_question() -> None:
    history = build_history(system_prompt="sys", path=tool_path(), budget_tokens=10_000)
    assert history == [
        {"role": "system", "content": "sys"},  # unchanged from turn to turn: its cached tokens are reused
        {"role": "user", "content": "The conversation so far:\nUser: what is 6*7?\n(a tool said: 6*7 = 42)\n"
                                    "Assistant: It is 42.\n\nMy new message: and halved?"},
    ]
    assert not any("[called" in str(entry["content"]) or "[result" in str(entry["content"]) for entry in history)
    first = build_history(system_prompt="sys", path=tool_path()[:1], budget_tokens=10_000)
    assert first == [{"role": "system", "content": "sys"}, {"role": "user", "content": "what is 6*7?"}]


def test_a_native_model_reads_earlier_tool_use_as_tool_messages() -> None:
    history = build_history(system_prompt="sys", path=tool_path(), budget_tokens=10_000, native_tools=True)
    assert history[2] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "6*7"}'}}]}
    assert history[3] == {"role": "tool", "tool_call_id": "c1", "content": '{"result": 42}'}
    assert history[4] == {"role": "assistant", "content": "It is 42."}
    assert history[5] == {"role": "user", "content": "and halved?"}


def test_a_call_without_a_result_is_left_out_for_native_models() -> None:
    answer = message("a", "q", "assistant", "")
    answer.content = [{"type": "text", "text": "Let me run it."},
                      {"type": "tool_call", "call_id": "c1", "name": "sandbox_exec", "arguments": "{}"}]
    answer.status = "cancelled"
    history = build_history(system_prompt="sys", path=[message("q", None, "user", "run"), answer],
                            budget_tokens=10_000, native_tools=True)  # fmt: skip
    assert history[-1] == {"role": "assistant", "content": "Let me run it."}
    assert all("tool_calls" not in entry for entry in history)
