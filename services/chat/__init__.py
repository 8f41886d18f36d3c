"""Agent chat: the agent loop, the tool registry, sessions and messages, per-session metrics."""

from services.chat.metering import Meter, SessionMetricsMeter
from services.chat.service import ChatService
from services.chat.tools import Tool, ToolContext, ToolGroup, ToolRegistry, builtin_tools

__all__ = [
    "ChatService",
    "Meter",
    "SessionMetricsMeter",
    "Tool",
    "ToolContext",
    "ToolGroup",
    "ToolRegistry",
    "builtin_tools",
]
