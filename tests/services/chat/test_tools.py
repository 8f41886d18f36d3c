from __future__ import annotations

import math

import pytest

from services.chat.tools import Tool, ToolGroup, evaluate


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("6*7", 42), ("(17 * 23) + 1", 392), ("2^10", 1024), ("sqrt(16) + pi", 4 + math.pi), ("-3 // 2", -2)],
)
def test_the_calculator_evaluates_arithmetic(expression: str, expected: float) -> None:
    assert evaluate(expression) == pytest.approx(expected)


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "open('/etc/passwd')",
        "x + 1",
        "(1).__class__",
        "9**9**9",
        "[1, 2]",
        "1 if 1 else 2",
        "a" * 600,
    ],
)
def test_the_calculator_refuses_anything_else(expression: str) -> None:
    with pytest.raises((ValueError, SyntaxError)):
        evaluate(expression)


def test_tool_names_follow_what_model_apis_accept() -> None:
    async def handler(arguments, context):  # type: ignore[no-untyped-def]
        return None

    with pytest.raises(ValueError):
        Tool(name="bad name!", description="", parameters={}, group=ToolGroup.BUILTIN, handler=handler)
    tool = Tool(name="ok_name-1", description="d", parameters={"type": "object"}, group=ToolGroup.MCP, handler=handler)
    assert tool.source == "mcp" and tool.openai_schema()["function"]["name"] == "ok_name-1"
