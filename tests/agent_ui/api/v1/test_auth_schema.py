"""The OpenAPI schema of auth says what the server enforces: a client that follows the schema is never refused
for the shape of its input, and the server refuses what the schema refuses."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.conftest import DEFAULT_PASSWORD

# Accepted and refused alike, by the server and by the published schema (ECMAScript regexes, code points).
EMAILS = [
    "a@example.com",
    "  Mixed.Case@Example.COM\n",
    "a@localhost",
    "a@b",
    "a b@example.com",
    "a@@example.com",
    "@example.com",
    "x" * 64 + "@example.com",
    "x" * 65 + "@example.com",
    "a@" + "d" * 240 + ".com",
    "a@" + "d" * 260 + ".com",
    "\ufeffa@example.com",  # ECMAScript whitespace, not Python's
    "\x1ca@example.com",  # Python whitespace, not ECMAScript's
    "\u00a0a@example.com\u3000",
    "é@ü.example",
    "😀@example.com",
    "a@example.",
    "a@.com",
]
PASSWORDS = ["", "x", "x" * 7, "x" * 8, "😀" * 8, "x" * 256, "x" * 257]


@pytest.fixture
async def schema(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/openapi.json")).json()


def body_validator(schema: dict[str, Any], path: str, method: str = "post") -> jsonschema_rs.Validator:
    ref = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[1]
    return jsonschema_rs.validator_for({**schema["components"]["schemas"][name], "components": schema["components"]})


async def test_register_accepts_exactly_what_its_schema_describes(
    client: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    validator = body_validator(schema, "/api/v1/auth/register")
    fields = schema["components"]["schemas"]["RegisterRequest"]["properties"]
    assert (fields["password"]["minLength"], fields["password"]["maxLength"]) == (8, 256)
    assert fields["email"]["maxLength"] == 254 and fields["email"]["pattern"].startswith("^")
    cases = [{"email": email, "password": DEFAULT_PASSWORD} for email in EMAILS]
    cases += [{"email": f"p{i}@example.com", "password": password} for i, password in enumerate(PASSWORDS)]
    disagreements = []
    for body in cases:
        response = await client.post("/api/v1/auth/register", json=body)
        assert response.status_code in (201, 409, 422), response.text
        if validator.is_valid(body) != (response.status_code != 422):
            disagreements.append((body["email"], len(body["password"]), response.status_code))
    assert disagreements == []


async def test_login_describes_its_fields_too(client: httpx.AsyncClient, schema: dict[str, Any]) -> None:
    validator = body_validator(schema, "/api/v1/auth/login")
    fields = schema["components"]["schemas"]["LoginRequest"]["properties"]
    assert (fields["password"]["minLength"], fields["password"]["maxLength"]) == (1, 256)
    for email in EMAILS:
        body = {"email": email, "password": "x"}
        response = await client.post("/api/v1/auth/login", json=body)
        assert response.status_code in (401, 422, 429), response.text
        assert validator.is_valid(body) == (response.status_code != 422), email


async def test_request_booleans_are_strict(
    client: httpx.AsyncClient, schema: dict[str, Any], make_account: Any
) -> None:
    admin, user = await make_account(), await make_account()
    key = (await client.post("/api/v1/agent/api-keys", json={"name": "k"}, headers=user.headers)).json()
    sloppies: list[Any] = [0, 1, "true", "false", "yes", "1", 0.0, [], {}]
    for sloppy in sloppies:
        disable = await client.patch(f"/api/v1/admin/users/{user.id}", json={"disabled": sloppy}, headers=admin.headers)
        assert disable.status_code == 422, (sloppy, disable.text)
        deactivate = await client.patch(
            f"/api/v1/agent/api-keys/{key['id']}", json={"is_active": sloppy}, headers=user.headers
        )
        assert deactivate.status_code == 422, (sloppy, deactivate.text)
    assert (await client.get("/api/v1/auth/me", headers=user.headers)).json()["is_disabled"] is False
    disabled = await client.patch(f"/api/v1/admin/users/{user.id}", json={"disabled": True}, headers=admin.headers)
    assert disabled.status_code == 200 and disabled.json()["is_disabled"] is True
    update = schema["components"]["schemas"]["UserAdminUpdate"]["properties"]["disabled"]
    assert {"type": "boolean"} in update["anyOf"]
