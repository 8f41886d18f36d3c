"""Attacks on the edge of the API, each as it was found (issue 11): oversized and unparseable bodies, lone
surrogates, resume ids past int64, HTML under /api, cross-site requests, and the headers every page carries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from agent_ui.deps import JSON_BODY_LIMIT
from tests.conftest import DEFAULT_PASSWORD, Account

# The edge answers before any database is asked: SQLite alone (PostgreSQL twins are for database behaviour).
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
JSON_HEADERS = {"content-type": "application/json"}


class CountingBody:
    """A request body that records how much of it the server pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"email": "a@b.c", "password": "'
        while self.sent < self.total:
            self.sent += self.chunk
            yield b"x" * self.chunk
        yield b'"}'


async def test_a_300_mb_login_body_is_refused_with_413_before_it_is_read(client: httpx.AsyncClient) -> None:
    body = CountingBody(300 * 1024 * 1024)
    headers = JSON_HEADERS | {"content-length": str(300 * 1024 * 1024 + 40)}
    response = await client.post(LOGIN, content=body, headers=headers)  # type: ignore[arg-type]
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert str(JSON_BODY_LIMIT) in response.json()["error"]["message"]
    assert body.sent == 0


async def test_a_body_without_length_is_cut_off_at_the_limit(client: httpx.AsyncClient) -> None:
    body = CountingBody(50 * 1024 * 1024)
    response = await client.post(LOGIN, content=body, headers=JSON_HEADERS)  # type: ignore[arg-type]
    assert response.status_code == 413
    assert body.sent <= JSON_BODY_LIMIT + body.chunk


async def test_a_body_just_under_the_limit_is_still_read(client: httpx.AsyncClient) -> None:
    padding = "x" * (JSON_BODY_LIMIT - 100)
    response = await client.post(LOGIN, json={"email": "a@b.c", "password": padding})
    assert response.status_code in (401, 422)  # read and judged, not refused for its size


async def test_an_anonymous_oversized_body_to_a_guarded_route_is_401_without_reading(
    client: httpx.AsyncClient,
) -> None:
    body = CountingBody(10 * 1024 * 1024)
    response = await client.post("/api/v1/agent/api-keys", content=body, headers=JSON_HEADERS)  # type: ignore[arg-type]
    assert response.status_code == 401
    assert body.sent == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "a@b.c", "password": "\ud800\ud800 long enough"},
        {"email": "a\udc00@b.c", "password": DEFAULT_PASSWORD},
    ],
    ids=["password", "email"],
)
@pytest.mark.parametrize("path", [LOGIN, REGISTER])
async def test_lone_surrogates_in_credentials_are_422(client: httpx.AsyncClient, path: str, payload: dict) -> None:  # type: ignore[type-arg]
    body = json.dumps(payload).encode()  # json escapes them as \ud800, which is what an attacker sends
    assert b"\\ud" in body or b"\\udc" in body
    response = await client.post(path, content=body, headers=JSON_HEADERS)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_text"


async def test_a_nul_in_any_json_text_is_422_before_it_reaches_the_database(client: httpx.AsyncClient) -> None:
    # PostgreSQL refuses NUL in text: the fuzzer found this as a 500 from register on PostgreSQL.
    body = json.dumps({"email": "nul\u0000@localhost", "password": DEFAULT_PASSWORD}).encode()
    response = await client.post(REGISTER, content=body, headers=JSON_HEADERS)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_text"
    escaped_backslash = json.dumps({"email": "a@b.c", "password": "\\u0000 is six characters"}).encode()
    assert (await client.post(LOGIN, content=escaped_backslash, headers=JSON_HEADERS)).status_code == 401


async def test_a_surrogate_pair_is_text_and_accepted(client: httpx.AsyncClient) -> None:
    body = json.dumps({"email": "emoji@example.com", "password": "\U0001f600 is a fine password"}).encode()
    assert b"\\ud83d\\ude00" in body
    response = await client.post(REGISTER, content=body, headers=JSON_HEADERS)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "body", [b"\xff", b"[" * 100_000, b'{"email": "\xc3\x28"}', b"{" * 5000], ids=["ff", "deep", "bad-utf8", "braces"]
)
async def test_unparseable_bodies_are_422_malformed_json(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(LOGIN, content=body, headers=JSON_HEADERS)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "malformed_json"


@pytest.mark.parametrize(
    "resume",
    [{"params": {"after": "9223372036854775808"}}, {"headers": {"Last-Event-ID": "99999999999999999999"}}],
    ids=["after", "last-event-id"],
)
async def test_resume_ids_past_int64_are_422(
    client: httpx.AsyncClient,
    make_account,
    resume: dict,  # type: ignore[no-untyped-def,type-arg]
) -> None:
    account: Account = await make_account()
    response = await client.get(
        "/api/v1/agent/chat/runs/run_doesnotexist/events",
        params=resume.get("params"),
        headers=account.headers | resume.get("headers", {}),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


async def test_trace_under_api_is_a_json_405(client: httpx.AsyncClient) -> None:
    response = await client.request("TRACE", "/api/v1/health")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_the_bare_api_prefix_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def _cookie_session(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    """Signs the client in by cookie alone (its jar keeps the session cookie)."""
    account: Account = await make_account()
    login = await client.post(LOGIN, json={"email": account.email, "password": account.password})
    assert login.status_code == 200 and client.cookies


@pytest.mark.parametrize(
    "origin",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://test:8081"},  # another port of the same host is another origin
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
    ],
    ids=["foreign", "other-port", "null", "referer"],
)
async def test_cookie_requests_from_a_foreign_origin_are_403(
    client: httpx.AsyncClient,
    make_account,
    origin: dict[str, str],  # type: ignore[no-untyped-def]
) -> None:
    await _cookie_session(client, make_account)
    for method, path in (("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/agent/api-keys")):
        response = await client.request(method, path, headers=origin, json={"name": "k"})
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "cross_origin_request"
    # the session still works: the refused logout did not happen
    assert (await client.get("/api/v1/auth/me")).status_code == 200


async def test_cookie_requests_from_our_own_origin_or_a_program_pass(
    client: httpx.AsyncClient,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    await _cookie_session(client, make_account)
    same = await client.post("/api/v1/agent/api-keys", headers={"Origin": "http://test"}, json={"name": "same-origin"})
    assert same.status_code == 201, same.text
    no_header = await client.post("/api/v1/agent/api-keys", json={"name": "curl"})
    assert no_header.status_code == 201, no_header.text


async def test_bearer_requests_are_not_checked_for_origin(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account: Account = await make_account()
    response = await client.post(
        "/api/v1/agent/api-keys", headers=account.headers | {"Origin": "http://evil.example"}, json={"name": "k"}
    )
    assert response.status_code == 201, response.text


async def test_login_from_a_foreign_origin_is_refused(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account: Account = await make_account()
    response = await client.post(
        LOGIN, json={"email": account.email, "password": account.password}, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_pages_and_api_answers_carry_security_headers(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    api = await client.get("/api/v1/health")
    for response in (page, api):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "object-src 'none'" in page.headers["content-security-policy"]
    assert api.headers["content-security-policy"].startswith("default-src 'none'")


async def test_the_schema_documents_the_common_errors(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    login = schema["paths"][LOGIN]["post"]["responses"]
    assert {"413", "422", "403"} <= set(login)
    keys = schema["paths"]["/api/v1/agent/api-keys"]["post"]["responses"]
    assert {"401", "403", "413", "422"} <= set(keys)
