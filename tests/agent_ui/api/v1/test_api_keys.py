from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from services.auth.models import ApiKey

KEYS = "/api/v1/agent/api-keys"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_key_is_returned_once_and_authenticates(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    created = await client.post(KEYS, json={"name": "laptop"}, headers=account.headers)
    assert created.status_code == 201
    body = created.json()
    key = body["api_key"]
    assert key.startswith("sk_") and len(key) >= 3 + 32
    assert key.startswith(body["prefix"]) and len(body["prefix"]) < len(key)
    assert body["scopes"] == ["*"] and body["is_active"] is True

    me = await client.get("/api/v1/auth/me", headers=bearer(key))
    assert me.status_code == 200 and me.json()["email"] == account.email

    listed = await client.get(KEYS, headers=account.headers)
    one = await client.get(f"{KEYS}/{body['id']}", headers=account.headers)
    for response in (listed, one):
        assert response.status_code == 200
        assert key not in response.text and "api_key" not in response.text
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]
    assert listed.json()["next_cursor"] is None


async def test_a_key_in_use_stops_at_once_when_deactivated_or_revoked(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    body = (await client.post(KEYS, json={"name": "k"}, headers=account.headers)).json()
    key = bearer(body["api_key"])
    assert (await client.get("/api/v1/auth/me", headers=key)).status_code == 200  # checked, so trusted a moment
    await client.patch(f"{KEYS}/{body['id']}", json={"is_active": False}, headers=account.headers)
    assert (await client.get("/api/v1/auth/me", headers=key)).status_code == 401
    await client.patch(f"{KEYS}/{body['id']}", json={"is_active": True}, headers=account.headers)
    assert (await client.get("/api/v1/auth/me", headers=key)).status_code == 200
    await client.delete(f"{KEYS}/{body['id']}", headers=account.headers)
    assert (await client.get("/api/v1/auth/me", headers=key)).status_code == 401
    signed_out = await client.post("/api/v1/auth/logout", headers=account.headers)
    assert signed_out.status_code in (200, 204)
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401


async def test_the_database_holds_nothing_of_a_key_beyond_its_prefix(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    body = (await client.post(KEYS, json={"name": "k"}, headers=account.headers)).json()
    await client.get("/api/v1/auth/me", headers=bearer(body["api_key"]))  # also writes last_used_at
    secret_part = body["api_key"][len(body["prefix"]) :]

    dump: list[str] = []
    async with app.state.services.db.transaction() as session:
        connection = await session.connection()
        tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        for table in tables:
            rows = await connection.execute(sa.text(f'SELECT * FROM "{table}"'))
            dump.extend(str(value) for row in rows for value in row)
    text = "\n".join(dump)
    assert body["prefix"] in text  # the display prefix is kept on purpose
    windows = {secret_part[i : i + 8] for i in range(len(secret_part) - 7)}
    assert not [window for window in windows if window in text]


async def test_revoked_inactive_and_expired_keys_get_401(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()

    async def new_key(**extra: object) -> dict:  # type: ignore[type-arg]
        response = await client.post(KEYS, json={"name": "k", **extra}, headers=account.headers)
        assert response.status_code == 201, response.text
        return response.json()

    revoked, inactive, expiring = (
        await new_key(),
        await new_key(),
        await new_key(expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()),
    )
    assert (await client.delete(f"{KEYS}/{revoked['id']}", headers=account.headers)).status_code == 204
    patched = await client.patch(f"{KEYS}/{inactive['id']}", json={"is_active": False}, headers=account.headers)
    assert patched.status_code == 200 and patched.json()["is_active"] is False
    async with app.state.services.db.transaction() as session:
        key = await session.get(ApiKey, expiring["id"])
        assert key is not None
        key.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(key)

    codes = {}
    for name, key in [("revoked", revoked), ("inactive", inactive), ("expired", expiring)]:
        response = await client.get("/api/v1/auth/me", headers=bearer(key["api_key"]))
        assert response.status_code == 401, name
        codes[name] = response.json()["error"]["code"]
    assert codes == {"revoked": "invalid_api_key", "inactive": "api_key_inactive", "expired": "api_key_expired"}

    # A revoked key is gone from the owner's view; a deactivated one can come back.
    assert (await client.get(f"{KEYS}/{revoked['id']}", headers=account.headers)).status_code == 404
    await client.patch(f"{KEYS}/{inactive['id']}", json={"is_active": True}, headers=account.headers)
    assert (await client.get("/api/v1/auth/me", headers=bearer(inactive["api_key"]))).status_code == 200


async def test_users_cannot_read_change_or_revoke_each_others_keys(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_account(), await make_account()
    key = (await client.post(KEYS, json={"name": "alice's"}, headers=alice.headers)).json()

    assert (await client.get(f"{KEYS}/{key['id']}", headers=bob.headers)).status_code == 404
    assert (await client.patch(f"{KEYS}/{key['id']}", json={"name": "mine"}, headers=bob.headers)).status_code == 404
    assert (await client.delete(f"{KEYS}/{key['id']}", headers=bob.headers)).status_code == 404
    assert (await client.get(KEYS, headers=bob.headers)).json()["items"] == []
    # Bob's own key cannot reach Alice's either.
    bobs_key = (await client.post(KEYS, json={"name": "bob's"}, headers=bob.headers)).json()["api_key"]
    assert (await client.delete(f"{KEYS}/{key['id']}", headers=bearer(bobs_key))).status_code == 404

    still = await client.get(f"{KEYS}/{key['id']}", headers=alice.headers)
    assert still.status_code == 200 and still.json()["name"] == "alice's" and still.json()["is_active"] is True
    assert (await client.get("/api/v1/auth/me", headers=bearer(key["api_key"]))).status_code == 200


async def test_scopes_limit_what_a_key_may_do(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    narrow = await client.post(KEYS, json={"name": "ro", "scopes": ["config"]}, headers=account.headers)
    assert narrow.status_code == 201 and narrow.json()["scopes"] == ["config"]
    key = narrow.json()["api_key"]
    assert (await client.get("/api/v1/agent/config", headers=bearer(key))).status_code == 200
    denied = await client.get(KEYS, headers=bearer(key))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "insufficient_scope"

    keys_only = (await client.post(KEYS, json={"name": "k", "scopes": ["api_keys"]}, headers=account.headers)).json()[
        "api_key"
    ]
    escalate = await client.post(KEYS, json={"name": "x", "scopes": ["*"]}, headers=bearer(keys_only))
    assert escalate.status_code == 403 and escalate.json()["error"]["code"] == "scope_escalation"
    unknown = await client.post(KEYS, json={"name": "x", "scopes": ["root"]}, headers=account.headers)
    assert unknown.status_code == 422


async def test_create_validates_name_and_expiry(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for body in [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 129},
        {},
        {"name": "k", "expires_at": past},
        {"name": "k", "expires_at": "2030-01-01T00:00:00"},
        {"name": "k", "extra": 1},
    ]:
        response = await client.post(KEYS, json=body, headers=account.headers)
        assert response.status_code == 422, body
        assert "error" in response.json()


async def test_list_is_paginated_newest_first(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    ids = [(await client.post(KEYS, json={"name": f"k{i}"}, headers=account.headers)).json()["id"] for i in range(5)]
    first = (await client.get(KEYS, params={"limit": 2}, headers=account.headers)).json()
    second = (
        await client.get(KEYS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=account.headers)
    ).json()
    third = (
        await client.get(KEYS, params={"limit": 2, "cursor": second["next_cursor"]}, headers=account.headers)
    ).json()
    seen = [item["id"] for page in (first, second, third) for item in page["items"]]
    assert seen == list(reversed(ids))
    assert third["next_cursor"] is None
    bad = await client.get(KEYS, params={"cursor": "garbage!"}, headers=account.headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"
    assert (await client.get(KEYS, params={"limit": 0}, headers=account.headers)).status_code == 422


async def test_last_used_is_written_at_most_once_a_minute(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    created = (await client.post(KEYS, json={"name": "k"}, headers=account.headers)).json()
    assert created["last_used_at"] is None
    await client.get("/api/v1/auth/me", headers=bearer(created["api_key"]))
    first = (await client.get(f"{KEYS}/{created['id']}", headers=account.headers)).json()["last_used_at"]
    await client.get("/api/v1/auth/me", headers=bearer(created["api_key"]))
    second = (await client.get(f"{KEYS}/{created['id']}", headers=account.headers)).json()["last_used_at"]
    assert first is not None and first == second
