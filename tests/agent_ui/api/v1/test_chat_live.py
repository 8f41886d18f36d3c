"""Streaming, stop and resume against a real uvicorn process: what buffering test transports cannot show."""

from __future__ import annotations

import asyncio

import httpx

from tests.sse import Event, parse, text_of
from tests.upstream import ScriptedUpstream, Step

STREAM = "/api/v1/agent/chat/stream"


async def signed_in(http: httpx.AsyncClient) -> dict[str, str]:
    body = {"email": "live@example.com", "password": "correct horse battery"}
    await http.post("/api/v1/auth/register", json=body)
    token = (await http.post("/api/v1/auth/login", json=body)).json()["access_token"]
    http.cookies.clear()
    return {"Authorization": f"Bearer {token}"}


class Reader:
    """Reads a live SSE response as it arrives, across several calls."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.aiter_text()
        self._buffer = ""
        self._ready: list[Event] = []

    async def take(self, count: int | None = None) -> list[Event]:
        """The next ``count`` events, or all until the stream ends."""
        while count is None or len(self._ready) < count:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                break
            self._buffer += chunk
            while "\n\n" in self._buffer:
                block, self._buffer = self._buffer.split("\n\n", 1)
                self._ready += parse(block + "\n\n")
        taken = self._ready if count is None else self._ready[:count]
        self._ready = [] if count is None else self._ready[count:]
        return taken


async def test_tokens_arrive_while_the_answer_is_being_written(live_url: str, upstream: ScriptedUpstream) -> None:
    upstream.push(Step(text=[f"t{i} " for i in range(40)], rate=40))  # one second of answer
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as http:
        headers = await signed_in(http)
        loop = asyncio.get_running_loop()
        async with http.stream("POST", STREAM, json={"message": "stream please"}, headers=headers) as response:
            reader = Reader(response)
            first = await reader.take(3)
            first_at = loop.time()
            rest = await reader.take()
            last_at = loop.time()
    assert [e.type for e in first[:2]] == ["run", "content.delta"]
    assert last_at - first_at > 0.5  # the first tokens came long before the end
    assert rest[-1].type == "done" and text_of(first + rest) == "".join(f"t{i} " for i in range(40))


async def test_stop_from_a_second_client_keeps_the_partial_answer(live_url: str, upstream: ScriptedUpstream) -> None:
    upstream.push(Step(text=[f"w{i} " for i in range(400)], rate=50))  # eight seconds if not stopped
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as http, httpx.AsyncClient(base_url=live_url) as other:
        headers = await signed_in(http)
        async with http.stream("POST", STREAM, json={"message": "talk a lot"}, headers=headers) as response:
            reader = Reader(response)
            events = await reader.take(6)
            run = events[0].data
            stopped = await other.post(f"/api/v1/agent/chat/runs/{run['run_id']}/stop", headers=headers)
            assert stopped.status_code == 202
            events += await reader.take()
        assert events[-1].type == "done" and events[-1].data["finish_reason"] == "cancelled"
        assert [e.data["scope"] for e in events if e.type == "usage"] == ["call", "total"]
        partial = text_of(events)
        assert 0 < len(partial) < len("".join(f"w{i} " for i in range(400)))

        detail = (await http.get(f"/api/v1/agent/chat/sessions/{run['session_id']}", headers=headers)).json()
        answer = detail["messages"][1]
        assert answer["status"] == "cancelled" and answer["content"][0]["text"] == partial
        assert detail["active_run_id"] is None
        again = await http.post(f"/api/v1/agent/chat/runs/{run['run_id']}/stop", headers=headers)
        assert again.status_code == 409


async def test_a_disconnected_client_resumes_without_gaps(live_url: str, upstream: ScriptedUpstream) -> None:
    upstream.push(Step(text=[f"r{i} " for i in range(60)], rate=60))
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as http:
        headers = await signed_in(http)
        async with http.stream("POST", STREAM, json={"message": "go"}, headers=headers) as response:
            seen = await Reader(response).take(5)  # then the client goes away
        run_id = seen[0].data["run_id"]
        resume_headers = {**headers, "Last-Event-ID": str(seen[-1].id)}
        async with http.stream("GET", f"/api/v1/agent/chat/runs/{run_id}/events", headers=resume_headers) as response:
            assert response.status_code == 200
            rest = await Reader(response).take()
    ids = [e.id for e in seen + rest]
    assert ids == list(range(1, len(ids) + 1))
    assert rest[-1].type == "done" and rest[-1].data["finish_reason"] == "stop"
    assert text_of(seen + rest) == "".join(f"r{i} " for i in range(60))
