from __future__ import annotations

import httpx

USERS = "/api/v1/admin/users"


async def test_non_admins_get_403_before_any_validation(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    admin, user = await make_account(), await make_account()
    assert (await client.get(USERS, headers=user.headers)).status_code == 403
    for body in [b"{not json", b'{"role": "emperor"}', b'{"role": "admin"}']:
        response = await client.patch(
            f"{USERS}/{admin.id}", content=body, headers={**user.headers, "content-type": "application/json"}
        )
        assert response.status_code == 403, body
        assert response.json()["error"]["code"] == "admin_required"
    assert (
        await client.patch(f"{USERS}/{admin.id}", content=b"{", headers={"content-type": "application/json"})
    ).status_code == 401
    me = await client.get("/api/v1/auth/me", headers=user.headers)
    assert me.json()["role"] == "user"


async def test_admin_lists_users_and_changes_roles(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    admin, user = await make_account(), await make_account()
    listed = await client.get(USERS, headers=admin.headers)
    assert listed.status_code == 200
    rows = {row["email"]: row for row in listed.json()["items"]}
    assert rows[admin.email]["role"] == "admin" and rows[user.email]["role"] == "user"
    assert all(set(row) >= {"id", "email", "role", "is_disabled", "balance"} for row in rows.values())
    assert "password" not in listed.text

    promoted = await client.patch(f"{USERS}/{user.id}", json={"role": "admin"}, headers=admin.headers)
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert (await client.get(USERS, headers=user.headers)).status_code == 200
    assert (await client.patch(f"{USERS}/nope", json={"role": "user"}, headers=admin.headers)).status_code == 404
    assert (
        await client.patch(f"{USERS}/{user.id}", json={"role": "emperor"}, headers=admin.headers)
    ).status_code == 422


async def test_disabling_a_user_stops_their_sessions_and_keys_at_once(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    admin, user = await make_account(), await make_account()
    key = (await client.post("/api/v1/agent/api-keys", json={"name": "k"}, headers=user.headers)).json()["api_key"]
    key_headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/auth/me", headers=key_headers)).status_code == 200

    disabled = await client.patch(f"{USERS}/{user.id}", json={"disabled": True}, headers=admin.headers)
    assert disabled.status_code == 200 and disabled.json()["is_disabled"] is True
    assert (await client.get("/api/v1/auth/me", headers=user.headers)).status_code == 401
    refused = await client.get("/api/v1/auth/me", headers=key_headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "account_disabled"
    login = await client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    assert login.status_code == 403 and login.json()["error"]["code"] == "account_disabled"

    await client.patch(f"{USERS}/{user.id}", json={"disabled": False}, headers=admin.headers)
    assert (await client.get("/api/v1/auth/me", headers=key_headers)).status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=user.headers)).status_code == 401  # sessions stay ended


async def test_the_last_admin_cannot_be_demoted_or_disable_themselves(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    admin = await make_account()
    demote = await client.patch(f"{USERS}/{admin.id}", json={"role": "user"}, headers=admin.headers)
    assert demote.status_code == 409 and demote.json()["error"]["code"] == "last_admin"
    second = await make_account()
    await client.patch(f"{USERS}/{second.id}", json={"role": "admin"}, headers=admin.headers)
    self_disable = await client.patch(f"{USERS}/{admin.id}", json={"disabled": True}, headers=admin.headers)
    assert self_disable.status_code == 409
    assert (await client.patch(f"{USERS}/{admin.id}", json={"role": "user"}, headers=admin.headers)).status_code == 200


async def test_an_admins_key_needs_the_admin_scope(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    admin = await make_account()
    narrow = (
        await client.post("/api/v1/agent/api-keys", json={"name": "k", "scopes": ["config"]}, headers=admin.headers)
    ).json()
    full = (await client.post("/api/v1/agent/api-keys", json={"name": "k"}, headers=admin.headers)).json()
    assert (await client.get(USERS, headers={"Authorization": f"Bearer {narrow['api_key']}"})).status_code == 403
    assert (await client.get(USERS, headers={"Authorization": f"Bearer {full['api_key']}"})).status_code == 200


async def test_disabled_must_be_a_json_boolean(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    admin, user = await make_account(), await make_account()
    for sloppy in (0, 1, "true", "false"):
        response = await client.patch(f"{USERS}/{user.id}", json={"disabled": sloppy}, headers=admin.headers)
        assert response.status_code == 422, sloppy
        assert response.json()["error"]["code"] == "validation_error"
    unchanged = await client.patch(f"{USERS}/{user.id}", json={"disabled": None}, headers=admin.headers)
    assert unchanged.status_code == 200  # null leaves it as it is
    me = await client.get("/api/v1/auth/me", headers=user.headers)
    assert me.status_code == 200 and me.json()["is_disabled"] is False
