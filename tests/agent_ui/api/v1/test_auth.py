from __future__ import annotations

import httpx

from tests.conftest import DEFAULT_PASSWORD


async def test_first_user_is_admin_and_later_users_are_not(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/v1/auth/register", json={"email": "Boss@Example.com", "password": DEFAULT_PASSWORD})
    second = await client.post("/api/v1/auth/register", json={"email": "b@example.com", "password": DEFAULT_PASSWORD})
    assert first.status_code == 201 and second.status_code == 201
    assert first.json()["role"] == "admin" and first.json()["email"] == "boss@example.com"
    assert second.json()["role"] == "user"
    assert "password" not in first.text and "password_hash" not in first.text


async def test_register_rejects_duplicates_and_bad_input_without_echoing_it(client: httpx.AsyncClient) -> None:
    body = {"email": "a@example.com", "password": DEFAULT_PASSWORD}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
    duplicate = await client.post("/api/v1/auth/register", json={**body, "email": "A@example.com"})
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "email_taken"

    short = await client.post("/api/v1/auth/register", json={"email": "c@example.com", "password": "s3cr3t!"})
    assert short.status_code == 422
    assert short.json()["error"]["code"] == "validation_error"
    assert "s3cr3t!" not in short.text
    bad_email = await client.post("/api/v1/auth/register", json={"email": "nope", "password": DEFAULT_PASSWORD})
    assert bad_email.status_code == 422


async def test_login_sets_http_only_cookie_and_returns_a_bearer_token(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/auth/register", json={"email": "a@example.com", "password": DEFAULT_PASSWORD})
    response = await client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "agent_ui_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0 and body["user"]["email"] == "a@example.com"

    by_cookie = await client.get("/api/v1/auth/me")
    assert by_cookie.status_code == 200 and by_cookie.json()["email"] == "a@example.com"
    client.cookies.clear()
    by_bearer = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert by_bearer.status_code == 200
    assert set(by_bearer.json()) >= {"id", "email", "role", "balance"}


async def test_wrong_password_and_unknown_user_get_the_same_401(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/auth/register", json={"email": "a@example.com", "password": DEFAULT_PASSWORD})
    wrong = await client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": "not the one"})
    unknown = await client.post("/api/v1/auth/login", json={"email": "z@example.com", "password": "not the one"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers


async def test_unauthenticated_calls_get_401_json(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/agent/api-keys"),
        ("POST", "/api/v1/agent/api-keys"),
    ]:
        response = await client.request(method, path, json={"name": "x"})
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "not_authenticated"
    garbage = await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-session"})
    assert garbage.status_code == 401


async def test_logout_ends_the_session_for_cookie_and_bearer(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/auth/register", json={"email": "a@example.com", "password": DEFAULT_PASSWORD})
    login = await client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": DEFAULT_PASSWORD})
    token = login.json()["access_token"]
    cookie = client.cookies.get("agent_ui_session")
    assert cookie == token

    logout = await client.post("/api/v1/auth/logout")
    assert logout.status_code == 204
    assert "agent_ui_session=" in logout.headers["set-cookie"]  # cleared in the browser
    client.cookies.set("agent_ui_session", token)
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    client.cookies.clear()
    assert (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401


async def test_another_session_survives_a_logout(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    other = await client.post("/api/v1/auth/login", json={"email": account.email, "password": account.password})
    client.cookies.clear()
    assert (await client.post("/api/v1/auth/logout", headers=account.headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401
    still = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other.json()['access_token']}"})
    assert still.status_code == 200
