"""The interactive API docs, /docs (Swagger UI) and /redoc, served with their scripts and styles from a pinned
package (fastapi-offline ships both) instead of a CDN: they work on a machine with no network, and their pages
load nothing from another host.

ReDoc's bundle always draws Redocly's logo from Redocly's CDN; it is served with that one URL pointed at an empty
inline image, so the page never asks another host (the logo's ``onError`` would hide it offline anyway).
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from agent_ui.security import docs_policy

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets"
# Swagger UI would send the schema's URL to its public validator for a badge; the docs stay on this host.
SWAGGER_PARAMETERS = {"validatorUrl": None}
REDOC_BUNDLE = "redoc.standalone.js"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='0' height='0'/%3E"


def _assets() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def _redoc_bundle() -> bytes:
    bundle = (_assets() / REDOC_BUNDLE).read_text(encoding="utf-8")
    if REDOC_LOGO not in bundle:  # a new ReDoc draws its logo some other way: look before pinning it
        raise RuntimeError(f"{REDOC_BUNDLE} no longer names {REDOC_LOGO}")
    return bundle.replace(REDOC_LOGO, EMPTY_IMAGE).encode()


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = docs_policy(bytes(page.body).decode())
    return page


def add_api_docs(app: FastAPI) -> None:
    """Register the docs pages and their assets; the app is created with ``docs_url=None, redoc_url=None``.

    Must be added before the UI is mounted, which takes every other path.
    """
    redoc_bundle = _redoc_bundle()
    redoc_etag = '"' + hashlib.sha256(redoc_bundle).hexdigest()[:32] + '"'

    @app.get(f"{ASSETS_PATH}/{REDOC_BUNDLE}", include_in_schema=False)
    async def redoc_script(request: Request) -> Response:
        headers = {"ETag": redoc_etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == redoc_etag:
            return Response(status_code=304, headers=headers)
        return Response(redoc_bundle, media_type="text/javascript", headers=headers)

    app.mount(ASSETS_PATH, StaticFiles(directory=_assets()), name="docs-assets")  # after the route above
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return _with_policy(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} · Swagger UI",
                swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}/favicon.ico",
                swagger_ui_parameters=SWAGGER_PARAMETERS,
            )
        )

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return _with_policy(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} · ReDoc",
                redoc_js_url=f"{root}{ASSETS_PATH}/{REDOC_BUNDLE}",
                redoc_favicon_url=f"{root}/favicon.ico",
                with_google_fonts=False,
            )
        )
