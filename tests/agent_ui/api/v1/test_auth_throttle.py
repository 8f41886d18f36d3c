"""Password guessing over the REST API: throttled per account and per client, 429 with when to retry, and no
difference between an email that exists and one that does not. Lockouts here last minutes, so no request of a
test ever outlives one (time passing is tested with a clock in tests/services/auth/test_throttle.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.settings import Settings
from tests.conftest import DEFAULT_PASSWORD

# The throttle lives in memory and answers before the database is asked: SQLite alone.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

LOGIN = "/api/v1/auth/login"
FREE = 5  # AGENT_UI_AUTH__LOGIN_THROTTLE__ACCOUNT_FREE_FAILURES (the default)
CLIENT_FREE = 20  # AGENT_UI_AUTH__LOGIN_THROTTLE__CLIENT_FREE_FAILURES (the default)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    throttle = settings.auth.login_throttle.model_copy(update={"lockout_base_s": 600.0, "lockout_max_s": 3600.0})
    return settings.model_copy(update={"auth": settings.auth.model_copy(update={"login_throttle": throttle})})


def client_at(app: FastAPI, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app, client=(ip, 4711)), base_url="http://test")


@pytest.fixture
async def attacker(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_at(app, "203.0.113.66") as http:
        yield http


async def register(client: httpx.AsyncClient, email: str) -> None:
    created = await client.post("/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD})
    assert created.status_code == 201, created.text


async def test_fifty_wrong_passwords_then_the_right_one_is_still_refused(
    app: FastAPI, client: httpx.AsyncClient, attacker: httpx.AsyncClient
) -> None:
    await register(client, "victim@example.com")
    statuses = []
    for i in range(50):
        response = await attacker.post(LOGIN, json={"email": "victim@example.com", "password": f"guess-{i}"})
        statuses.append(response.status_code)
    assert statuses == [401] * (FREE + 1) + [429] * (50 - FREE - 1)
    refused = response.json()["error"]
    assert refused["code"] == "too_many_attempts"
    assert refused["message"] == "too many sign-in attempts; try again in 10 minutes"
    assert 590 <= refused["details"]["retry_after_s"] <= 600

    right = await attacker.post(LOGIN, json={"email": "victim@example.com", "password": DEFAULT_PASSWORD})
    assert right.status_code == 429  # checked before the password is
    assert "set-cookie" not in right.headers and "access_token" not in right.text
    # The account is locked out from everywhere (the attacker may be many machines), the client for nothing else.
    async with client_at(app, "192.0.2.10") as elsewhere:
        from_elsewhere = await elsewhere.post(LOGIN, json={"email": "victim@example.com", "password": DEFAULT_PASSWORD})
    assert from_elsewhere.status_code == 429
    await register(client, "other@example.com")
    other = await attacker.post(LOGIN, json={"email": "other@example.com", "password": DEFAULT_PASSWORD})
    assert other.status_code == 200


async def test_a_throttled_login_says_when_to_retry_in_retry_after(
    client: httpx.AsyncClient, attacker: httpx.AsyncClient
) -> None:
    for i in range(FREE + 2):
        response = await attacker.post(LOGIN, json={"email": "someone@example.com", "password": f"guess-{i}"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == str(response.json()["error"]["details"]["retry_after_s"])


async def test_an_unknown_email_is_throttled_exactly_like_a_known_one(app: FastAPI, client: httpx.AsyncClient) -> None:
    await register(client, "known@example.com")
    answers: dict[str, list[tuple[int, object]]] = {}
    for email, ip in (("known@example.com", "198.51.100.1"), ("nobody@example.com", "198.51.100.2")):
        async with client_at(app, ip) as http:
            answers[email] = []
            for i in range(FREE + 4):
                response = await http.post(LOGIN, json={"email": email, "password": f"guess-{i}"})
                body = response.json()["error"]
                if body["details"]:  # the seconds left, in minutes: a second may pass between the two runs
                    body["details"]["retry_after_s"] = round(body["details"]["retry_after_s"] / 60)
                answers[email].append((response.status_code, body))
    assert answers["known@example.com"] == answers["nobody@example.com"]
    assert [status for status, _ in answers["known@example.com"]] == [401] * (FREE + 1) + [429] * 3


async def test_a_success_resets_the_accounts_count(client: httpx.AsyncClient, attacker: httpx.AsyncClient) -> None:
    await register(client, "typo@example.com")
    for round_ in range(3):
        for i in range(FREE):
            wrong = await attacker.post(LOGIN, json={"email": "typo@example.com", "password": f"typo-{round_}-{i}"})
            assert wrong.status_code == 401
        right = await attacker.post(LOGIN, json={"email": "typo@example.com", "password": DEFAULT_PASSWORD})
        assert right.status_code == 200


async def test_one_client_guessing_across_many_accounts_is_throttled(
    app: FastAPI, client: httpx.AsyncClient, attacker: httpx.AsyncClient
) -> None:
    await register(client, "target@example.com")
    statuses = [
        (await attacker.post(LOGIN, json={"email": f"user{i}@example.com", "password": "Summer2026!"})).status_code
        for i in range(CLIENT_FREE + 5)
    ]
    assert statuses == [401] * (CLIENT_FREE + 1) + [429] * 4
    right = {"email": "target@example.com", "password": DEFAULT_PASSWORD}
    assert (await attacker.post(LOGIN, json=right)).status_code == 429
    async with client_at(app, "192.0.2.77") as someone_else:
        assert (await someone_else.post(LOGIN, json=right)).status_code == 200


async def test_concurrent_guesses_get_no_more_tries_than_sequential_ones(
    client: httpx.AsyncClient, attacker: httpx.AsyncClient
) -> None:
    await register(client, "victim@example.com")
    responses = await asyncio.gather(
        *(attacker.post(LOGIN, json={"email": "victim@example.com", "password": f"guess-{i}"}) for i in range(40))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [401] * (FREE + 1) + [429] * (40 - FREE - 1)
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 429} == {"too_many_attempts"}


async def test_the_schema_documents_the_429(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    throttled = schema["paths"][LOGIN]["post"]["responses"]["429"]
    assert "too_many_attempts" in throttled["description"]
    assert "Retry-After" in throttled["headers"]
