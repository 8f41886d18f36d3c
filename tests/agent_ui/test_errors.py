"""The error contract: one JSON envelope, the right status, never HTML under /api."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

OPEN_ROUTES = {("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/login"), ("GET", "/api/v1/health")}


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/agent/unknown/deeper", "/api/other"])
async def test_unknown_api_paths_get_json_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


async def test_wrong_method_gets_json_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["allow"] and "DELETE" not in response.headers["allow"]


async def test_malformed_json_gets_422_in_the_envelope(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "malformed_json"
    assert response.json()["error"]["message"]


async def test_the_ui_still_serves_html_outside_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/login")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]


async def test_every_api_route_requires_auth_except_the_open_ones(app: FastAPI, client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    checked = 0
    for path, operations in schema["paths"].items():
        for method in operations:
            concrete = path.replace("{", "").replace("}", "")
            response = await client.request(method.upper(), concrete, json={})
            if (method.upper(), path) in OPEN_ROUTES:
                assert response.status_code != 401, path
            else:
                assert response.status_code == 401, f"{method} {path} -> {response.status_code}"
                assert response.json()["error"]["code"] == "not_authenticated"
            checked += 1
    assert checked >= 10


async def test_operation_ids_are_stable_and_unique(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert "auth-login" in ids and "api-keys-create-api-key" in ids
