"""LLM providers: OpenAI-compatible clients and the embedded local model."""

from services.llm.client import LLMClient
from services.llm.local import LocalModelRunner
from services.llm.registry import ModelRegistry
from services.llm.schemas import CallResult, ChatRequest, ModelInfo, TextDelta, ToolCallRequest

__all__ = [
    "CallResult",
    "ChatRequest",
    "LLMClient",
    "LocalModelRunner",
    "ModelInfo",
    "ModelRegistry",
    "TextDelta",
    "ToolCallRequest",
]
