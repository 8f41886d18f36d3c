"""What the rest of the app sees of models and of a streamed model call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel


class ModelInfo(BaseModel):
    id: str
    provider: str
    title: str | None = None
    context_window: int
    max_output_tokens: int
    price_prompt_per_1k: float
    price_completion_per_1k: float
    native_tools: bool
    local: bool = False
    size: str | None = None  # local models: parameters, quantisation, file size (for the model picker)
    temperature: float | None = None
    seed: int | None = None


@dataclass
class ToolCallRequest:
    """A tool call the model asked for (assembled from the stream's fragments)."""

    call_id: str
    name: str
    arguments: str


@dataclass
class TextDelta:
    text: str
    kind: Literal["content", "reasoning"] = "content"


@dataclass
class CallResult:
    """The end of one model call."""

    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    text: str = ""


StreamItem = TextDelta | CallResult


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    seed: int | None = None
    frequency_penalty: float | None = None  # a small model's loops in long structured answers
    extra_body: dict[str, Any] | None = None  # parameters of one server only (llama.cpp's penalty window)
