"""Tool calls written as text by the small local models: held back, parsed, never shown."""

from __future__ import annotations

import json

import pytest

from services.chat.text_calls import CallGate, parse_calls
from services.tools import BuiltinTools, Tool


@pytest.fixture
async def tools() -> list[Tool]:
    return await BuiltinTools().tools_for(None)  # type: ignore[arg-type]


def streamed(gate: CallGate, pieces: list[str]) -> str:
    return "".join(gate.feed(piece) for piece in pieces) + gate.end()


@pytest.mark.parametrize("answer", ["Paris is the capital of France.", "```python\ndef f():\n    pass\n```", "42",
                                    "  Sure! Here it is.", "[link](http://x) and more text"])
def test_prose_passes_through_whole(answer: str) -> None:
    gate = CallGate()
    assert streamed(gate, [answer[:3], answer[3:7], answer[7:]]) == answer
    assert not gate.held


@pytest.mark.parametrize("answer", ['{"name": "calculator", "arguments": {}}', '\n```json\n{"name": "x"}\n```',
                                    "<tool_call>\n{}\n</tool_call>", "<tools>\n{}\n</tools>",
                                    '```\n{"name": "x"}```', '```python\n{"name": "x"}\n```', "{}"])
def test_what_starts_like_a_call_is_held(answer: str) -> None:
    gate = CallGate()
    assert streamed(gate, [answer[:2], answer[2:]]) == ""
    assert gate.held and gate.text == answer


def test_calls_are_read_from_fences_tags_and_bare_json_with_only_declared_arguments(tools: list[Tool]) -> None:
    text = ('```json\n{"name": "calculator", "arguments": {"expression": "2+2", "type": "object"}}\n```\n'
            '<tool_call>\n{"name": "current_datetime", "arguments": {"additionalProperties": false}}\n</tool_call>'
            '{"name": "not_offered", "arguments": {}} {"function": {"name": "calculator", '
            '"arguments": "{\\"expression\\": \\"3*3\\"}"}}')  # fmt: skip
    calls = parse_calls(text, tools, id_prefix="c")
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("calculator", {"expression": "2+2"}), ("current_datetime", {}), ("calculator", {"expression": "3*3"})]
    assert [c.call_id for c in calls] == ["c_0", "c_1", "c_2"]


@pytest.mark.parametrize("text", ['{"name": "reverse", "arguments": {"s": "abc"}}', "{not json", '{"name": 3}', "[]"])
def test_text_without_a_call_of_an_offered_tool_gives_none(text: str, tools: list[Tool]) -> None:
    assert parse_calls(text, tools, id_prefix="c") == []
