"""The error contract: one JSON envelope, the right status, never HTML under /api."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx
import nicegui
import pytest
from fastapi import FastAPI

# The database plays no part here (its own tests run on SQLite and PostgreSQL): SQLite only, to keep the suite fast.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

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


def page_elements(response: httpx.Response) -> list[dict[str, Any]]:
    """The NiceGUI elements a page response carries (the browser builds the page from them)."""
    found = re.search(r"parseElements\(String\.raw`(.*?)`\)", response.text, re.DOTALL)
    assert found, "not a NiceGUI page"
    return list(json.loads(html.unescape(found.group(1))).values())


def shown_text(elements: list[dict[str, Any]]) -> str:
    return " | ".join(str(e.get("text") or e.get("props", {}).get("label") or "") for e in elements)


def links(elements: list[dict[str, Any]]) -> dict[str, str]:
    """Text (or label) of each element with text that links somewhere → its target."""
    return {
        str(e.get("text") or e["props"].get("label")): e["props"]["href"]
        for e in elements
        if "href" in e.get("props", {}) and (e.get("text") or e["props"].get("label"))
    }


def targets(elements: list[dict[str, Any]]) -> set[str]:
    return {e["props"]["href"] for e in elements if "href" in e.get("props", {})}


@pytest.mark.parametrize("path", ["/no/such/page", "/settings/nope", "/docs/nope"])
async def test_an_unknown_page_is_a_404_page_with_a_way_home(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    elements = page_elements(response)
    assert "Page not found" in shown_text(elements) and path in shown_text(elements)
    assert "HTTPException" not in response.text  # not NiceGUI's own error page
    assert links(elements)["Go home"] == "/"
    assert links(elements)["agent-ui"] == "/"
    assert links(elements)["Sign in"] == "/login"


async def test_a_signed_in_user_sees_the_404_page_inside_the_app_frame(client: httpx.AsyncClient) -> None:
    body = {"email": "lost@example.com", "password": "correct horse battery"}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
    assert (await client.post("/api/v1/auth/login", json=body)).status_code == 200  # the session cookie
    response = await client.get("/lost")
    assert response.status_code == 404
    elements = page_elements(response)
    named = links(elements)
    assert named["Go home"] == "/" and named["agent-ui"] == "/"
    assert "/settings" in targets(elements) and "Settings" in shown_text(elements)  # the frame's navigation
    assert "Sign in" not in named
    assert "lost@example.com" in shown_text(elements)  # the user menu


async def test_non_page_404s_outside_api_stay_json(client: httpx.AsyncClient) -> None:
    posted = await client.post("/no/such/form")
    assert posted.status_code == 404 and posted.json()["error"]["code"] == "not_found"
    library = await client.get(f"/_nicegui/{nicegui.__version__}/libraries/nope")  # one of NiceGUI's endpoints
    assert library.status_code == 404 and library.json()["error"]["code"] == "not_found"
