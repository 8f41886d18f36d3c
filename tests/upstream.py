"""A scripted OpenAI-compatible upstream over real HTTP: the one test double the project allows.

Each chat completion request takes the next step of the script (or the default reply): stream text at a
given rate, return native tool calls, stall, fail with a status, or drop the connection mid-stream.
Requests are recorded so tests can check what the app sent. Run standalone for benchmarks:
`python -m tests.upstream --port 9000 --tokens 500 --rate 200`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.live_server import free_port


@dataclass
class Step:
    """One scripted answer."""

    text: list[str] = field(default_factory=list)  # streamed one piece per chunk
    rate: float | None = None  # pieces per second; None = as fast as possible
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    stall_s: float = 0.0  # wait this long before the first chunk
    status: int | None = None  # fail with this HTTP status instead of streaming
    disconnect_after: int | None = None  # drop the connection after this many pieces
    finish_reason: str = "stop"
    prompt_tokens: int = 11
    # Taken only by a request whose JSON body contains this text (None: by any request). For work that calls the
    # model side by side (a chat turn and the deck job its tool started): each request gets its own answers.
    match: str | None = None


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [part + (" " if i < len(parts) - 1 else "") for i, part in enumerate(parts)]


class ScriptedUpstream:
    def __init__(self) -> None:
        self.script: deque[Step] = deque()
        self.default = Step(text=words("Hello from the scripted upstream."))
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *steps: Step) -> None:
        self.script.extend(steps)

    def app(self) -> Starlette:
        async def models(_request: Request) -> JSONResponse:
            return JSONResponse({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

        async def completions(request: Request) -> Response:
            raw = await request.body()
            body = json.loads(raw)
            self.requests.append(body)
            step = self._take(raw.decode())
            if step.stall_s:
                await asyncio.sleep(step.stall_s)
            if step.status is not None:
                return JSONResponse({"error": {"message": "scripted failure"}}, status_code=step.status)
            return StreamingResponse(self._stream(body, step), media_type="text/event-stream")

        return Starlette(
            routes=[Route("/v1/models", models), Route("/v1/chat/completions", completions, methods=["POST"])]
        )

    def _take(self, text: str) -> Step:
        """The first step this request may take: one matching its text, else the first without ``match``."""
        for step in self.script:
            if step.match is not None and step.match in text:
                self.script.remove(step)
                return step
        for step in self.script:
            if step.match is None:
                self.script.remove(step)
                return step
        return self.default

    async def _stream(self, body: dict[str, Any], step: Step):  # type: ignore[no-untyped-def]
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:8]}"
        model = body.get("model", "scripted")

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
            payload: dict[str, Any] = {
                "id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }  # fmt: skip
            if usage:
                payload["usage"] = usage
            return f"data: {json.dumps(payload)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        interval = 1 / step.rate if step.rate else 0
        started = time.perf_counter()
        for index, piece in enumerate(step.text):
            if step.disconnect_after is not None and index >= step.disconnect_after:
                raise ConnectionResetError("scripted disconnect")
            if interval:
                delay = started + index * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            yield chunk({"content": piece})
        for index, (name, arguments) in enumerate(step.tool_calls):
            call = {"index": index, "id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)}}  # fmt: skip
            yield chunk({"tool_calls": [call]})
        finish = "tool_calls" if step.tool_calls else step.finish_reason
        yield chunk({}, finish)
        completion_tokens = len(step.text) + 5 * len(step.tool_calls)
        yield chunk({}, usage={"prompt_tokens": step.prompt_tokens, "completion_tokens": completion_tokens,
                               "total_tokens": step.prompt_tokens + completion_tokens})  # fmt: skip
        yield b"data: [DONE]\n\n"

    def start(self, port: int | None = None) -> ScriptedUpstream:
        self.port = port or free_port()
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("scripted upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()
    upstream = ScriptedUpstream()
    upstream.default = Step(text=[f"tok{i} " for i in range(args.tokens)], rate=args.rate)
    uvicorn.run(upstream.app(), host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
