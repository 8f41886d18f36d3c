"""What several benchmarks share: percentiles, and a signed-in user on a live server."""

from __future__ import annotations

import statistics

import httpx

ACCOUNT = {"email": "bench@example.com", "password": "correct horse battery"}


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


async def signed_in(http: httpx.AsyncClient) -> dict[str, str]:
    """Register the bench user and sign in: the Bearer headers of its session (no cookie is kept)."""
    (await http.post("/api/v1/auth/register", json=ACCOUNT)).raise_for_status()
    token = (await http.post("/api/v1/auth/login", json=ACCOUNT)).json()["access_token"]
    http.cookies.clear()
    return {"Authorization": f"Bearer {token}"}
