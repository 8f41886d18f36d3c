"""The real process: one uvicorn serving the UI and the REST API, with cookies over real HTTP."""

from __future__ import annotations

import httpx


async def test_one_process_serves_login_page_and_api(live_url: str) -> None:
    async with httpx.AsyncClient(base_url=live_url) as http:
        home = await http.get("/", follow_redirects=True)
        assert home.status_code == 200 and "text/html" in home.headers["content-type"]
        assert str(home.url).startswith(f"{live_url}/login")

        body = {"email": "first@example.com", "password": "correct horse battery"}
        assert (await http.post("/api/v1/auth/register", json=body)).status_code == 201
        assert (await http.post("/api/v1/auth/login", json=body)).status_code == 200
        me = await http.get("/api/v1/auth/me")  # the HttpOnly cookie, over real HTTP
        assert me.status_code == 200 and me.json()["role"] == "admin"

        docs = await http.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        missing = await http.get("/api/v1/does-not-exist")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
