"""Tools: declared from argument models, offered by providers per caller, grouped behind scopes, run with a
time limit and the run's stop signal."""

from services.tools.base import (
    GENERATION,
    AnyArguments,
    Citation,
    NoArguments,
    Tool,
    ToolContext,
    ToolGroup,
    ToolProvider,
)
from services.tools.builtin import BUILTIN, BuiltinTools
from services.tools.catalog import ToolCatalog
from services.tools.runner import ToolOutcome, run_tool

__all__ = [
    "BUILTIN",
    "GENERATION",
    "AnyArguments",
    "BuiltinTools",
    "Citation",
    "NoArguments",
    "Tool",
    "ToolCatalog",
    "ToolContext",
    "ToolGroup",
    "ToolOutcome",
    "ToolProvider",
    "run_tool",
]
