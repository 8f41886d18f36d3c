"""Foundation figures against a real `uvicorn main:app` process on SQLite.

Prints: cold start to a healthy /api/v1/health, request latency (p50/p95) of health, of /auth/me with a
session token and with an `sk_` key, the key-over-session ratio, and the idle RSS of the server.
Run: `.venv/bin/python -m bench.foundation` (or `-m bench` for all benchmarks); `--quick` takes few samples
(the test suite runs it so the benchmark keeps working; its figures mean little).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import percentiles
from tests.live_server import live_server

REQUESTS = 400


def _measure(client: httpx.Client, path: str, headers: dict[str, str], requests: int) -> list[float]:
    for _ in range(min(20, requests)):  # warm-up
        client.get(path, headers=headers)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return samples


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few samples: check that the benchmark runs")
    requests = 20 if parser.parse_known_args()[0].quick else REQUESTS
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with live_server(Path(tmp) / "data") as server:
            cold_start_s = time.perf_counter() - started
            with httpx.Client(base_url=server.url) as client:
                account = {"email": "bench@example.com", "password": "correct horse battery"}
                client.post("/api/v1/auth/register", json=account).raise_for_status()
                token = client.post("/api/v1/auth/login", json=account).json()["access_token"]
                client.cookies.clear()
                session = {"Authorization": f"Bearer {token}"}
                key = client.post("/api/v1/agent/api-keys", json={"name": "bench"}, headers=session).json()["api_key"]
                results = {
                    "GET /api/v1/health": _measure(client, "/api/v1/health", {}, requests),
                    "GET /api/v1/auth/me (session)": _measure(client, "/api/v1/auth/me", session, requests),
                    "GET /api/v1/auth/me (sk_ key)": _measure(
                        client, "/api/v1/auth/me", {"Authorization": f"Bearer {key}"}, requests
                    ),
                }
            rss_mb = _rss_mb(server.pid)

        print(f"cold start to healthy: {cold_start_s * 1000:.0f} ms")
        for name, samples in results.items():
            p50, p95 = percentiles(samples)
            print(f"{name:<34} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   ({requests} sequential requests)")
        session_p50 = percentiles(results["GET /api/v1/auth/me (session)"])[0]
        key_p50 = percentiles(results["GET /api/v1/auth/me (sk_ key)"])[0]
        print(f"ratio sk_ key / session p50: {key_p50 / session_p50:.2f}")
        print(f"server RSS after the run: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
