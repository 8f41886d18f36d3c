"""The one tool registry every capability plugs into (builtin now; sandbox, rag, mcp, generation later)."""

from __future__ import annotations

import ast
import asyncio
import math
import operator
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ToolGroup(StrEnum):
    BUILTIN = "builtin"
    SANDBOX = "sandbox"
    RAG = "rag"
    MCP = "mcp"
    GENERATION = "generation"


@dataclass
class ToolContext:
    """What a tool may know and use while it runs for one turn."""

    user_id: str
    session_id: str
    run_id: str
    cancel: asyncio.Event
    emit: Callable[[str, dict[str, Any]], object]


ToolHandler = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    group: ToolGroup
    handler: ToolHandler
    source: str = ""
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not TOOL_NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} does not match {TOOL_NAME.pattern}")
        if not self.source:
            object.__setattr__(self, "source", self.group.value)

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)

    def register(self, tool: Tool) -> None:
        if tool.name in self.tools:
            raise ValueError(f"tool {tool.name} is registered twice")
        self.tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def for_groups(self, groups: set[str]) -> list[Tool]:
        return [tool for tool in self.tools.values() if tool.group.value in groups]

    def groups(self) -> list[str]:
        return sorted({tool.group.value for tool in self.tools.values()})


# -- built-in tools ------------------------------------------------------------------------------


async def current_datetime(arguments: dict[str, Any], _context: ToolContext) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"utc": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A")}


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


async def calculator(arguments: dict[str, Any], _context: ToolContext) -> dict[str, Any]:
    expression = str(arguments.get("expression", ""))
    return {"expression": expression, "result": evaluate(expression)}


def builtin_tools() -> list[Tool]:
    return [
        Tool(
            name="current_datetime",
            description="The current date and time in UTC, and the weekday.",
            parameters={"type": "object", "properties": {}, "additionalProperties": False},
            group=ToolGroup.BUILTIN,
            handler=current_datetime,
            timeout_s=2,
        ),
        Tool(
            name="calculator",
            description="Evaluate an arithmetic expression exactly, e.g. '(17 * 23) + sqrt(2)'.",
            parameters={
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "the arithmetic expression"}},
                "required": ["expression"],
                "additionalProperties": False,
            },
            group=ToolGroup.BUILTIN,
            handler=calculator,
            timeout_s=2,
        ),
    ]
