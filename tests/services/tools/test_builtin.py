"""The built-in calculator: arithmetic only."""

from __future__ import annotations

import math

import pytest

from services.tools.builtin import BuiltinTools, evaluate, format_number


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("6*7", 42), ("(17 * 23) + 1", 392), ("2^10", 1024), ("sqrt(16) + pi", 4 + math.pi), ("-3 // 2", -2),
     # What people and models write for arithmetic.
     ("1,234 * 5,678", 7006652), ("15% of 2340", 351), ("25% * 40", 10), ("10 % 3", 1), ("3 x 4", 12),
     ("6 × 7 ÷ 2", 21), ("factorial(7) / 3", 1680), ("7! / 3", 1680)],
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
        "factorial(1001)",
        "factorial(2.5)",
        "2 +",
    ],
)
def test_the_calculator_refuses_anything_else(expression: str) -> None:
    with pytest.raises((ValueError, SyntaxError)):
        evaluate(expression)


@pytest.mark.parametrize(("value", "text"), [(7006652, "7006652"), (46.50000000000001, "46.5"), (125.0, "125"),
                                             (2 / 3, "0.666666666667"), (10**20, "100000000000000000000")])
def test_results_are_written_without_float_noise(value: float, text: str) -> None:
    assert format_number(value) == text


async def test_tools_state_their_results_as_sentences_and_carry_no_example_to_copy() -> None:
    tools = {tool.name: tool for tool in await BuiltinTools().tools_for(None)}  # type: ignore[arg-type]
    calculator, clock = tools["calculator"], tools["current_datetime"]
    output = {"expression": "1234 * 5678", "result": 7006652}
    assert calculator.summary('{"expression": "1234 * 5678"}', True, output, None) == "1234 * 5678 = 7006652"
    assert clock.summary("{}", True, {"weekday": "Monday", "date": "30 November 2026", "time": "05:33 UTC"},
                         None) == "It is Monday, 30 November 2026, 05:33 UTC."
    assert calculator.summary("{}", False, None, "invalid arguments") == "calculator failed: invalid arguments"
    for tool in tools.values():
        assert "e.g." not in tool.description and not any(char.isdigit() for char in tool.description)
