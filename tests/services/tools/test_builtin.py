"""The built-in calculator: arithmetic only."""

from __future__ import annotations

import math

import pytest

from services.tools.builtin import evaluate


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
