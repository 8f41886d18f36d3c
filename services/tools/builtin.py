"""Tools every chat has: the current date and time, and a safe calculator."""

from __future__ import annotations

import ast
import math
import operator
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
}  # fmt: skip
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPRESSION = 500


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

    return walk(ast.parse(expression.replace("^", "**"), mode="eval"))


class CalculatorArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expression: str = Field(max_length=MAX_EXPRESSION, description="the arithmetic expression")


async def current_datetime(_arguments: NoArguments, _context: ToolContext) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"utc": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A")}


async def calculator(arguments: CalculatorArgs, _context: ToolContext) -> dict[str, Any]:
    return {"expression": arguments.expression, "result": evaluate(arguments.expression)}


class BuiltinTools:
    """A provider whose tools are the same for everyone allowed to chat."""

    def __init__(self) -> None:
        self._tools = [
            Tool(name="current_datetime", description="The current date and time in UTC, and the weekday.",
                 args=NoArguments, group=BUILTIN, handler=current_datetime, timeout_s=2),
            Tool(name="calculator",
                 description="Evaluate an arithmetic expression exactly, e.g. '(17 * 23) + sqrt(2)'.",
                 args=CalculatorArgs, group=BUILTIN, handler=calculator, timeout_s=2),
        ]  # fmt: skip

    def groups(self) -> list[ToolGroup]:
        return [BUILTIN]

    async def tools_for(self, principal: Principal) -> list[Tool]:
        return list(self._tools)
