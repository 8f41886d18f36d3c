"""MCP figures against a real `uvicorn main:app` process on SQLite, with the real notes server over stdio.

Prints: a tool call on a pooled stdio server straight through the client pool in this process (the floor), the
same call through the REST API (`POST /mcp/servers/{id}/tools/{name}/call`) and its ratio to the floor, a tool
call on agent-ui's own tool server through the SDK's streamable-HTTP client with an `sk_` key, and a fresh
connection (`POST /mcp/servers/{id}/test`: start the server, initialize, list tools).
Run: `.venv/bin/python -m bench.mcp`; `--quick` takes few samples (the test suite runs it; its figures mean little).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.common import percentiles, signed_in
from services.mcp.client import McpClientPool, ServerSpec
from tests.live_server import live_server

NOTES_SERVER = Path(__file__).resolve().parents[1] / "tests" / "services" / "mcp" / "servers" / "notes_server.py"
CALLS = 300
PROBES = 20


async def _timed(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    for _ in range(min(10, count)):  # warm-up
        await call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _line(name: str, samples: list[float]) -> float:
    p50, p95 = percentiles(samples)
    print(f"{name:<44} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   ({len(samples)} sequential)")
    return p50


async def run(calls: int, probes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "data") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            headers = await signed_in(http)
            created = await http.post(
                "/api/v1/agent/mcp/servers",
                headers=headers,
                json={"name": "notes", "transport": "stdio", "command": sys.executable, "args": [str(NOTES_SERVER)]},
            )
            created.raise_for_status()
            server_id = created.json()["id"]
            key = (
                await http.post(
                    "/api/v1/agent/api-keys", headers=headers, json={"name": "bench", "scopes": ["mcp", "chat"]}
                )
            ).json()["api_key"]

            async def rest_call() -> None:
                answer = await http.post(
                    f"/api/v1/agent/mcp/servers/{server_id}/tools/list_notes/call", headers=headers, json={}
                )
                assert answer.status_code == 200, answer.text

            async def probe() -> None:
                answer = await http.post(f"/api/v1/agent/mcp/servers/{server_id}/test", headers=headers)
                assert answer.json()["ok"], answer.text

            pool = McpClientPool(connect_timeout_s=20, call_timeout_s=20)
            direct_spec = ServerSpec(transport="stdio", command=sys.executable, args=(str(NOTES_SERVER),))
            tool_server = ServerSpec(
                transport="streamable_http",
                url=f"{server.url}/api/v1/agent/mcp/tool-server/",
                headers={"Authorization": f"Bearer {key}"},
            )
            try:

                async def direct_call() -> None:
                    assert not (await pool.call_tool("direct", direct_spec, "list_notes", {})).is_error

                async def tool_server_call() -> None:
                    result = await pool.call_tool("ours", tool_server, "calculator", {"expression": "6*7"})
                    assert not result.is_error and "42" in result.text(), result

                floor = _line("stdio tool call, client pool in process", await _timed(direct_call, calls))
                rest = _line("stdio tool call through the REST API", await _timed(rest_call, calls))
                print(f"ratio REST / direct p50: {rest / floor:.2f}")
                _line("tool server call (SDK client, sk_ key)", await _timed(tool_server_call, calls))
                _line("fresh connection (test: start, init, list)", await _timed(probe, probes))
            finally:
                await pool.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few samples: check that the benchmark runs")
    quick = parser.parse_known_args()[0].quick
    asyncio.run(run(20 if quick else CALLS, 3 if quick else PROBES))


if __name__ == "__main__":
    main()
