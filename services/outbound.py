"""Fetching a URL a user gave, without letting it reach this machine or the private network.

Every address the host name resolves to must be public (not loopback, private, link-local, multicast, reserved
or unspecified) unless the deployment allows private addresses. The request then goes to the address that was
checked (the name is kept for the Host header and TLS), so a name that resolves differently a moment later
(DNS rebinding) cannot slip through; redirects are followed by hand and each hop is checked again. The body is
read up to a size limit within one overall deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from services.errors import PayloadTooLargeError, UpstreamUnavailableError, ValidationFailedError

MAX_REDIRECTS = 5
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForbiddenAddressError(ValidationFailedError):
    """The URL leads to this machine or a private network."""

    code = "url_not_allowed"


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str | None
    data: bytes


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal address is itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # The user's input, not our failure: a 422 at once rather than a 503.
        raise ValidationFailedError(f"cannot resolve {host}: the name is unknown or there is no network",
                                    code="url_unreachable") from exc  # fmt: skip
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


class UrlFetcher:
    def __init__(self, *, allow_private: bool = False, timeout_s: float = 20.0, connect_timeout_s: float = 5.0,
                 user_agent: str = "agent-ui") -> None:  # fmt: skip
        self._allow_private = allow_private
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._user_agent = user_agent

    async def check(self, url: str) -> tuple[str, IPAddress]:
        """The URL's host and the first address to connect to; 422 for a URL that is not http(s) or leads to a
        private address (unless allowed), 503 when the name does not resolve."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationFailedError("only http and https URLs can be fetched", code="url_not_allowed")
        if parts.username or parts.password:
            raise ValidationFailedError("URLs with credentials are not fetched", code="url_not_allowed")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = await resolve(parts.hostname, port)
        if not addresses:
            raise ValidationFailedError(f"cannot resolve {parts.hostname}", code="url_unreachable")
        if not self._allow_private:
            for address in addresses:
                if not is_public(address):
                    raise ForbiddenAddressError(
                        f"{parts.hostname} leads to a private or local address ({address}); an admin can allow "
                        "such addresses (AGENT_UI_RAG__ALLOW_PRIVATE_URLS)"
                    )
        return parts.hostname, addresses[0]

    async def fetch(self, url: str, *, max_bytes: int) -> Fetched:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._fetch(url, max_bytes)
        except TimeoutError as exc:
            raise UpstreamUnavailableError(f"fetching {url} took longer than {self._timeout_s:g} s",
                                           code="url_unreachable") from exc  # fmt: skip

    async def _fetch(self, url: str, max_bytes: int) -> Fetched:
        timeout = httpx.Timeout(self._timeout_s, connect=self._connect_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                host, address = await self.check(url)
                parts = urlsplit(url)
                literal = f"[{address}]" if address.version == 6 else str(address)
                netloc = literal if parts.port is None else f"{literal}:{parts.port}"
                pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
                headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": self._user_agent,
                           "Accept": "text/html, text/plain, application/pdf, */*;q=0.5"}  # fmt: skip
                extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
                try:
                    request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
                    response = await client.send(request, stream=True)
                except httpx.HTTPError as exc:
                    raise UpstreamUnavailableError(f"cannot fetch {url}: {type(exc).__name__}",
                                                   code="url_unreachable") from exc  # fmt: skip
                async with contextlib.aclosing(response):
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise UpstreamUnavailableError(f"{url} answered {response.status_code}",
                                                       code="url_unreachable")  # fmt: skip
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise PayloadTooLargeError(f"the page is larger than the limit of {max_bytes} bytes")
                    body = bytearray()
                    async for part in response.aiter_bytes():
                        body += part
                        if len(body) > max_bytes:
                            raise PayloadTooLargeError(f"the page is larger than the limit of {max_bytes} bytes")
                    return Fetched(url=url, content_type=response.headers.get("content-type"), data=bytes(body))
        raise UpstreamUnavailableError(f"{url} redirects more than {MAX_REDIRECTS} times", code="url_unreachable")
