from __future__ import annotations

import httpx


async def test_health_reports_each_dependency_without_auth(client: httpx.AsyncClient, database_url: str) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["dependencies"]["database"]["status"] == "ok"
    assert body["dependencies"]["database"]["detail"] == database_url.split(":")[0].split("+")[0]
    assert set(body["dependencies"]) >= {"database", "llm", "docker", "tts"}


async def test_config_describes_the_instance(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    response = await client.get("/api/v1/agent/config", headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert {"models", "default_model", "capabilities", "api_key_scopes", "limits"} <= set(body)
    assert "api_keys" in body["api_key_scopes"]
    assert (await client.get("/api/v1/agent/config")).status_code == 401
