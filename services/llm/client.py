"""One wrapper over the `openai` SDK for every OpenAI-compatible endpoint: streaming, tool calls, usage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI

from services.errors import UpstreamUnavailableError
from services.llm.schemas import CallResult, ChatRequest, StreamItem, TextDelta, ToolCallRequest


class LLMClient:
    """A client for one provider. ``stream`` yields text deltas, then one :class:`CallResult`."""

    def __init__(self, *, provider: str, base_url: str, api_key: str | None, timeout_s: float) -> None:
        self.provider = provider
        self._client = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            max_retries=0,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        )

    async def close(self) -> None:
        await self._client.close()

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            kwargs["tools"] = request.tools
        if request.response_format:
            kwargs["response_format"] = request.response_format
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        try:
            stream = await self._client.chat.completions.create(**kwargs)
            text: list[str] = []
            calls: dict[int, dict[str, str]] = {}
            finish_reason = "stop"
            prompt_tokens = completion_tokens = 0
            async for chunk in stream:
                if chunk.usage is not None:
                    prompt_tokens = chunk.usage.prompt_tokens or 0
                    completion_tokens = chunk.usage.completion_tokens or 0
                for choice in chunk.choices:
                    delta = choice.delta
                    reasoning = getattr(delta, "reasoning_content", None)
                    if reasoning:
                        yield TextDelta(reasoning, "reasoning")
                    if delta.content:
                        text.append(delta.content)
                        yield TextDelta(delta.content)
                    for call in delta.tool_calls or []:
                        slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                        if call.id:
                            slot["id"] = call.id
                        if call.function is not None:
                            slot["name"] += call.function.name or ""
                            slot["arguments"] += call.function.arguments or ""
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise UpstreamUnavailableError(f"{self.provider} did not answer: {type(exc).__name__}") from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code == 429:
                raise UpstreamUnavailableError(f"{self.provider} answered {exc.status_code}") from exc
            raise UpstreamUnavailableError(f"{self.provider} refused the request ({exc.status_code})") from exc
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise UpstreamUnavailableError(f"{self.provider} broke the stream: {type(exc).__name__}") from exc
        yield CallResult(
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            tool_calls=[
                ToolCallRequest(call_id=slot["id"] or f"call_{index}", name=slot["name"], arguments=slot["arguments"])
                for index, slot in sorted(calls.items())
            ],
            text="".join(text),
        )
