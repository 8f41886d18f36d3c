"""Browser-facing defences: requests signed in by cookie come only from our own origin (CSRF), WebSocket
handshakes likewise, and every response carries headers that keep pages out of frames and sniffing."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_ui.errors import API_PREFIX, error_response

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_WS_SCHEMES = {"ws": "http", "wss": "https"}


def normalised_origin(url: str) -> str | None:
    """``scheme://host[:port]`` in lower case with the default port dropped; None for what is not an origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = _WS_SCHEMES.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


class OriginCheck:
    """Refuses an unsafe request that carries no Bearer token (so it is signed in by cookie, or signing in)
    when its ``Origin`` (or, lacking one, ``Referer``) is not this server's: SameSite=Lax cookies still ride
    along from pages on other ports of the same host and from sibling subdomains. The same holds for WebSocket
    handshakes, which browsers never protect. A request with neither header is not a browser's cross-site
    request (browsers send ``Origin`` on every cross-origin POST and handshake) and passes."""

    def __init__(self, app: ASGIApp, *, trusted: Iterable[str] = ()) -> None:
        self.app = app
        self.trusted = frozenset(origin for url in trusted if (origin := normalised_origin(url)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (kind == "websocket" or (kind == "http" and scope["method"] in UNSAFE_METHODS)) and not self._allowed(scope):
            if kind == "websocket":
                await receive()  # the connect message; a close before accept is a 403 to the client
                await send({"type": "websocket.close", "code": 1008, "reason": "cross-origin handshake"})
                return
            response = error_response(
                403,
                "cross_origin_request",
                "a request signed in by cookie must come from this site's own pages; "
                "programs send Authorization: Bearer instead",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        headers = Headers(scope=scope)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return True
        claimed = headers.get("origin") or headers.get("referer")
        if claimed is None:
            return True
        origin = normalised_origin(claimed)
        if origin is None:  # "null" (sandboxed frames, file:) or garbage
            return False
        own = normalised_origin(f"{scope.get('scheme', 'http')}://{headers.get('host', '')}")
        return origin == own or origin in self.trusted


_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}
# NiceGUI builds its pages with inline scripts and Vue templates compiled in the browser, so scripts need
# 'unsafe-inline' and 'unsafe-eval'; everything else is this origin only, and no one may frame a page.
PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "media-src 'self' data: blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# JSON and files under /api are never rendered as pages.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
# The interactive API docs load Swagger UI and ReDoc from this server (agent_ui/api_docs.py). ReDoc styles with
# injected <style> elements and searches in a blob: worker; the one inline script, Swagger UI's bootstrap, is
# allowed by its hash (docs_policy), never by 'unsafe-inline'.
_DOCS_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "worker-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
DOCS_POLICY = "; ".join(_DOCS_DIRECTIVES)
DOCS_PATHS = frozenset({"/docs", "/redoc"})
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: str) -> str:
    """DOCS_POLICY that also runs the page's own inline scripts (``<script>`` without attributes), by hash."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]
    if not hashes:
        return DOCS_POLICY
    return DOCS_POLICY.replace("script-src 'self'", "script-src 'self' " + " ".join(hashes), 1)


def policy_for(path: str) -> str:
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        return API_POLICY
    return DOCS_POLICY if path in DOCS_PATHS else PAGE_POLICY


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = policy_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _COMMON_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", policy)
            await send(message)

        await self.app(scope, receive, send_with_headers)
