"""Tools every chat has: the current date and time, and a safe calculator."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.tools.base import NoArguments, Tool, ToolContext, ToolGroup

BUILTIN = ToolGroup("builtin", Scope.CHAT, "the date and time, a calculator")

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "log": math.log,
    "log10": math.log10, "exp": math.exp, "abs": abs, "round": round, "floor": math.floor, "ceil": math.ceil,
    "factorial": lambda n: math.factorial(_small_whole(n)),
}  # fmt: skip
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPRESSION = 500


def _small_whole(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= 1000:
        raise ValueError("factorial takes a whole number from 0 to 1000")
    return value


def normalise(expression: str) -> str:
    """What people (and models) write for arithmetic, in Python's syntax: 1,234 → 1234, 15% (of) → (15/100) (*),
    × and x between numbers → *, ÷ → /, ^ → **, 7! → factorial(7)."""
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", expression)
    text = text.replace("×", "*").replace("÷", "/").replace("^", "**")
    text = re.sub(r"(?<=[\d)])\s*[xX]\s*(?=[\d(])", " * ", text)
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%\s*of\b", r"(\1/100) *", text)
    text = re.sub(r"(\d+)\s*!(?!=)", r"factorial(\1)", text)
    return re.sub(r"(\d+(?:\.\d+)?)\s*%(?!\s*[\d(])", r"(\1/100)", text)


def evaluate(expression: str) -> float | int:
    """Arithmetic only: numbers, + - * / // % **, parentheses and a few math functions. No names, no calls else."""
    if len(expression) > MAX_EXPRESSION:
        raise ValueError("expression too long")

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 1000 or abs(left) > 1e6):
                raise ValueError("exponent too large")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
            and len(node.args) <= 2
        ):
            return _FUNCTIONS[node.func.id](*(walk(arg) for arg in node.args))
        raise ValueError(f"not allowed in an expression: {ast.dump(node)[:60]}")

    try:
        tree = ast.parse(normalise(expression), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {exc.msg}") from None
    return walk(tree)


class CalculatorArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expression: str = Field(max_length=MAX_EXPRESSION, description="the arithmetic expression")


async def current_datetime(_arguments: NoArguments, _context: ToolContext) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"utc": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A"),
            "date": f"{now.day} {now:%B %Y}", "time": f"{now:%H:%M} UTC"}  # fmt: skip


def describe_datetime(_arguments: dict[str, Any], output: dict[str, str]) -> str:
    return f"It is {output['weekday']}, {output['date']}, {output['time']}."


async def calculator(arguments: CalculatorArgs, _context: ToolContext) -> dict[str, Any]:
    return {"expression": arguments.expression, "result": evaluate(arguments.expression)}


def format_number(value: float | int) -> str:
    """Whole numbers in full, others to 12 significant digits (no float noise such as 46.50000000000001)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return str(value) if isinstance(value, int) else f"{value:.12g}"


def describe_calculation(_arguments: dict[str, Any], output: dict[str, Any]) -> str:
    return f"{output['expression']} = {format_number(output['result'])}"


class BuiltinTools:
    """A provider whose tools are the same for everyone allowed to chat."""

    def __init__(self) -> None:
        self._tools = [
            Tool(name="current_datetime",
                 description="Today's date, the weekday and the time now (UTC). Use it when the answer depends on "
                             "the current date or time.",
                 args=NoArguments, group=BUILTIN, handler=current_datetime, timeout_s=2,
                 describe=describe_datetime),
            # No example in the description: small models copy an example instead of the user's numbers.
            Tool(name="calculator",
                 description="Compute an arithmetic expression built from the numbers in the user's message "
                             "(+ - * / % **, parentheses, sqrt, log, sin, cos, pi, factorial). Use it for every "
                             "calculation; never for text, facts or code.",
                 args=CalculatorArgs, group=BUILTIN, handler=calculator, timeout_s=2,
                 describe=describe_calculation),
        ]  # fmt: skip

    def groups(self) -> list[ToolGroup]:
        return [BUILTIN]

    async def tools_for(self, principal: Principal) -> list[Tool]:
        return list(self._tools)
