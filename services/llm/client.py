"""One wrapper over the `openai` SDK for every OpenAI-compatible endpoint: streaming, tool calls, usage."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from services.errors import UpstreamUnavailableError
from services.llm.schemas import CallResult, ChatRequest, StreamItem, TextDelta, ToolCallRequest


@functools.cache
def broken_stream_errors() -> tuple[type[Exception], ...]:
    """What a dropped or garbled stream raises: the SDK reads it with its own HTTP client (httpx2 in the pinned
    SDK), whose errors are not httpx's, and a chunk may not be JSON."""
    errors: list[type[Exception]] = [httpx.HTTPError, json.JSONDecodeError]
    try:
        import httpx2

        errors.append(httpx2.HTTPError)
    except ImportError:  # an SDK on plain httpx
        pass
    return tuple(errors)


class LLMClient:
    """A client for one provider. ``stream`` yields text deltas, then one :class:`CallResult`.

    The `openai` SDK is imported with the first client, not with the app: it is large (about 0.6 s and, once
    its lazy resources load, tens of MB) and an instance that never calls a model does not need it.
    """

    def __init__(self, *, provider: str, base_url: str, api_key: str | None, timeout_s: float) -> None:
        import openai

        self.provider = provider
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            max_retries=0,
            timeout=openai.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        )

    async def close(self) -> None:
        await self._client.close()

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        import openai

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
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.frequency_penalty is not None:
            kwargs["frequency_penalty"] = request.frequency_penalty
        if request.extra_body:
            kwargs["extra_body"] = request.extra_body
        try:
            # The SDK builds, authenticates and sends the request and maps HTTP errors; the stream's chunks
            # are read as plain JSON, as building a typed object per token costs more than the rest together.
            async with self._client.chat.completions.with_streaming_response.create(**kwargs) as response:
                text: list[str] = []
                calls: dict[int, dict[str, str]] = {}
                finish_reason = "stop"
                prompt_tokens = completion_tokens = 0
                async for payload in _data_lines(response.http_response):
                    if payload == b"[DONE]":
                        break
                    chunk = json.loads(payload)
                    if chunk.get("error"):
                        raise UpstreamUnavailableError(f"{self.provider} failed mid-answer: {chunk['error']}")
                    if usage := chunk.get("usage"):
                        prompt_tokens = usage.get("prompt_tokens") or 0
                        completion_tokens = usage.get("completion_tokens") or 0
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        if reasoning := delta.get("reasoning_content"):
                            yield TextDelta(reasoning, "reasoning")
                        if content := delta.get("content"):
                            text.append(content)
                            yield TextDelta(content)
                        for call in delta.get("tool_calls") or ():
                            slot = calls.setdefault(call.get("index", 0), {"id": "", "name": "", "arguments": ""})
                            slot["id"] = call.get("id") or slot["id"]
                            function = call.get("function") or {}
                            slot["name"] += function.get("name") or ""
                            slot["arguments"] += function.get("arguments") or ""
                        if choice.get("finish_reason"):
                            finish_reason = choice["finish_reason"]
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise UpstreamUnavailableError(f"{self.provider} did not answer: {type(exc).__name__}") from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code == 429:
                raise UpstreamUnavailableError(f"{self.provider} answered {exc.status_code}") from exc
            raise UpstreamUnavailableError(f"{self.provider} refused the request ({exc.status_code})") from exc
        except broken_stream_errors() as exc:
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


async def _data_lines(response: Any) -> AsyncIterator[bytes]:
    """The `data:` payloads of an SSE body, split from raw bytes (cheaper per token than text lines)."""
    buffer = b""
    async for raw in response.aiter_raw():
        buffer += raw
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                yield line[5:].strip()
    if buffer.startswith(b"data:"):
        yield buffer[5:].strip()
