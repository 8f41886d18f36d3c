"""/docs and /redoc come with everything they load from this server, and their policy allows nothing else."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from agent_ui.security import docs_policy

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_docs_pages_load_only_local_assets(client: httpx.AsyncClient, path: str) -> None:
    page = await client.get(path)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = ASSET.findall(page.text)
    assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/"), asset  # never another host
        loaded = await client.get(asset)
        assert loaded.status_code == 200, asset
        assert b"cdn.jsdelivr.net" not in loaded.content and b"cdn.redoc.ly" not in loaded.content, asset
    policy = page.headers["content-security-policy"]
    assert "http" not in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy


async def test_swagger_uis_inline_bootstrap_runs_by_its_hash(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert len(inline) == 1 and "SwaggerUIBundle(" in inline[0]
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}';" in page.headers["content-security-policy"]
    assert '"validatorUrl": null' in inline[0]  # no badge fetched from swagger.io


async def test_the_redoc_bundle_is_revalidated_by_etag(client: httpx.AsyncClient) -> None:
    first = await client.get("/docs/assets/redoc.standalone.js")
    assert first.status_code == 200 and "javascript" in first.headers["content-type"]
    again = await client.get("/docs/assets/redoc.standalone.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and not again.content


def test_a_page_without_inline_scripts_gets_no_script_allowance() -> None:
    policy = docs_policy('<html><script src="/a.js"> </script><style>p{}</style></html>')
    assert "script-src 'self';" in policy and "sha256" not in policy
