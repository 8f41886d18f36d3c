"""Chat streaming through the app vs calling the upstream directly.

The scripted OpenAI-compatible upstream (its own process) streams 500 tokens at 200 tokens/s; the app
(a real `uvicorn main:app`, SQLite, every event persisted) relays it as SSE. Prints: added time to
first token and the total-time ratio (median of sequential runs), 50 concurrent streams (TTFT p50,
largest stall inside a stream), server CPU per stream, 200 concurrent streams (errors, tokens
delivered), idle RSS; then the embedded local model's time to first token and tokens/s.

Run: `.venv/bin/python -m bench.chat_stream [--skip-local] [--quick]`; `--quick` streams 100 tokens, 2 pairs,
5 and 10 concurrent streams and skips the local model (the test suite runs it so the benchmark keeps working).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.live_server import free_port, live_server

TOKENS, RATE = 500, 200.0
TICKS = os.sysconf("SC_CLK_TCK")
# Enough signup credits that the bench user is never refused (HTTP 402) for hundreds of streams.
GRANT = {"AGENT_UI_CREDITS__SIGNUP_GRANT": "1000000"}


@dataclass
class StreamTiming:
    ttft: float = float("nan")
    total: float = float("nan")
    tokens: int = 0
    gaps: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def max_gap(self) -> float:
        return max(self.gaps, default=0.0)


async def _timed(lines: httpx.Response, marker: str, started: float) -> StreamTiming:
    timing, last = StreamTiming(), None
    async for chunk in lines.aiter_text():
        count = chunk.count(marker)
        if not count:
            continue
        now = time.perf_counter()
        if timing.tokens == 0:
            timing.ttft = now - started
        elif last is not None:
            timing.gaps.append(now - last)
        timing.tokens += count
        last = now
    timing.total = time.perf_counter() - started
    return timing


async def direct(http: httpx.AsyncClient, upstream: str) -> StreamTiming:
    body = {"model": "scripted", "messages": [{"role": "user", "content": "go"}], "stream": True}
    started = time.perf_counter()
    async with http.stream("POST", f"{upstream}/chat/completions", json=body) as response:
        return await _timed(response, '"content": "tok', started)


async def through_app(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> StreamTiming:
    started = time.perf_counter()
    try:
        async with http.stream("POST", f"{url}/api/v1/agent/chat/stream", json={"message": "go", "tools": []},
                               headers=headers) as response:  # fmt: skip
            if response.status_code != 200:
                return StreamTiming(error=f"HTTP {response.status_code}")
            return await _timed(response, "event: content.delta", started)
    except httpx.HTTPError as exc:
        return StreamTiming(error=type(exc).__name__)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def signed_in(url: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=url) as http:
        body = {"email": "bench@example.com", "password": "correct horse battery"}
        await http.post("/api/v1/auth/register", json=body)
        token = (await http.post("/api/v1/auth/login", json=body)).json()["access_token"]
        http.cookies.clear()
        key = await http.post(
            "/api/v1/agent/api-keys", json={"name": "bench"}, headers={"Authorization": f"Bearer {token}"}
        )
        return {"Authorization": f"Bearer {key.json()['api_key']}"}


@dataclass(frozen=True)
class Load:
    tokens: int = TOKENS
    sequential: int = 15
    concurrent: int = 50
    many: int = 200


QUICK = Load(tokens=100, sequential=2, concurrent=5, many=10)


async def scripted(load: Load) -> None:
    port = free_port()
    tokens, sequential = load.tokens, load.sequential
    upstream_process = subprocess.Popen(
        [sys.executable, "-m", "tests.upstream", "--port", str(port), "--tokens", str(tokens), "--rate", str(RATE)],
        cwd=Path(__file__).resolve().parents[1],
    )
    upstream = f"http://127.0.0.1:{port}/v1"
    llm = {"providers": [{"name": "scripted", "base_url": upstream, "models": [
        {"id": "scripted", "price_prompt_per_1k": 1, "price_completion_per_1k": 1, "max_output_tokens": 1024}]}],
        "local": {"enabled": False}}  # fmt: skip
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            live_server(Path(tmp) / "data", extra_env={"AGENT_UI_LLM": json.dumps(llm), **GRANT}) as server,
        ):
            await asyncio.sleep(1.0)
            idle_rss = rss_mb(server.pid)
            headers = await signed_in(server.url)
            limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
            async with httpx.AsyncClient(timeout=120, limits=limits) as http:
                await direct(http, upstream)
                await through_app(http, server.url, headers)  # warm-up
                direct_runs, app_runs = [], []
                for _ in range(sequential):
                    direct_runs.append(await direct(http, upstream))
                    app_runs.append(await through_app(http, server.url, headers))
                added_ttft = [(a.ttft - d.ttft) * 1000 for a, d in zip(app_runs, direct_runs, strict=True)]
                ratios = [a.total / d.total for a, d in zip(app_runs, direct_runs, strict=True)]
                print(f"scripted upstream: {tokens} tokens at {RATE:.0f} tokens/s; {sequential} sequential pairs")
                print(f"  direct TTFT median      {statistics.median(d.ttft for d in direct_runs) * 1000:7.2f} ms")
                print(f"  via app TTFT median     {statistics.median(a.ttft for a in app_runs) * 1000:7.2f} ms")
                print(f"  added TTFT median       {statistics.median(added_ttft):7.2f} ms   (target <= 5 ms)")
                print(f"  total-time ratio median {statistics.median(ratios):7.4f}      (target <= 1.005)")

                cpu_before = cpu_seconds(server.pid)
                runs = await asyncio.gather(*(through_app(http, server.url, headers) for _ in range(load.concurrent)))
                cpu_per_stream = (cpu_seconds(server.pid) - cpu_before) / len(runs) * 1000
                ok = [r for r in runs if r.error is None]
                print(f"{load.concurrent} concurrent streams")
                print(f"  errors {len(runs) - len(ok)}, TTFT p50 {p([r.ttft for r in ok], 0.5) * 1000:.1f} ms "
                      f"(target <= 100 ms), p95 {p([r.ttft for r in ok], 0.95) * 1000:.1f} ms")  # fmt: skip
                print(f"  largest stall inside a stream: median {statistics.median(r.max_gap for r in ok) * 1000:.1f} ms"
                      f" (target <= 20 ms), worst {max(r.max_gap for r in ok) * 1000:.1f} ms")  # fmt: skip
                print(
                    f"  server CPU per {tokens}-token stream, every event persisted: {cpu_per_stream:.1f} ms "
                    "(target <= 60 ms)"
                )

                runs = await asyncio.gather(*(through_app(http, server.url, headers) for _ in range(load.many)))
                errors = [r.error for r in runs if r.error]
                complete = sum(1 for r in runs if r.tokens == tokens)
                print(f"{load.many} concurrent streams")
                print(f"  errors {len(errors)}{' ' + str(sorted(set(errors))) if errors else ''}, streams with all "
                      f"{tokens} tokens: {complete}/{load.many}, wall p50 "
                      f"{p([r.total for r in runs if not r.error], 0.5):.2f} s (ideal {tokens / RATE:.2f} s)")  # fmt: skip
            print(f"app RSS idle {idle_rss:.0f} MB (target <= 200 MB), after the load {rss_mb(server.pid):.0f} MB")
    finally:
        upstream_process.terminate()
        upstream_process.wait()


async def local_model() -> None:
    llm = {"local": {"enabled": True}}
    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(Path(tmp) / "data", extra_env={"AGENT_UI_LLM": json.dumps(llm), **GRANT}) as server,
    ):
        headers = await signed_in(server.url)
        async with httpx.AsyncClient(timeout=300) as http:
            started = time.perf_counter()
            cold = await through_app(http, server.url, headers)
            cold_total = time.perf_counter() - started
            timings = []
            for _ in range(3):
                timings.append(await through_app(http, server.url, headers))
        rates = [(t.tokens - 1) / (t.total - t.ttft) for t in timings if t.tokens > 1 and t.total > t.ttft]
        print("local model (qwen2.5-coder-0.5b, 2 threads) through the app, message 'go', no tools")
        print(f"  first turn incl. model start: TTFT {cold.ttft:.2f} s, total {cold_total:.2f} s")
        print(f"  warm TTFT median {statistics.median(t.ttft for t in timings) * 1000:.0f} ms, "
              f"{statistics.median(rates):.1f} tokens/s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--sequential", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a small load, no local model: check that it runs")
    args = parser.parse_args()
    asyncio.run(scripted(QUICK if args.quick else Load(sequential=args.sequential)))
    if not args.skip_local and not args.quick:
        asyncio.run(local_model())


if __name__ == "__main__":
    main()
