"""A URL a user gives never reaches this machine or a private network unless the deployment allows it; fetched
URLs are capped in size and time, over real HTTP."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.errors import PayloadTooLargeError, UpstreamUnavailableError, ValidationFailedError
from services.outbound import ForbiddenAddressError, UrlFetcher, is_public


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254",
                                     "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "224.0.0.1",
                                     "100.64.0.1"])  # fmt: skip
def test_local_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", ["http://127.0.0.1:5432/", "http://localhost:6379/", "http://[::1]/",
                                 "http://169.254.169.254/latest/meta-data", "http://0x7f000001/",
                                 "http://2130706433/", "http://10.0.0.1/"])  # fmt: skip
async def test_urls_leading_to_this_machine_or_a_private_network_are_refused(url: str) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        await UrlFetcher().check(url)
    assert refused.value.code == "url_not_allowed"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/", "http://user:pw@example.com/"])
async def test_only_plain_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(ValidationFailedError):
        await UrlFetcher(allow_private=True).check(url)


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect-home":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/page")
            self.end_headers()
            return
        body = b"<html><title>Herons</title><p>Herons nest in reeds.</p></html>"
        if self.path == "/big":
            body = b"x" * 5000
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_an_allowed_private_address_is_fetched_with_redirects_and_its_type(site: str) -> None:
    fetched = await UrlFetcher(allow_private=True).fetch(f"{site}/redirect-home", max_bytes=10_000)
    assert fetched.url == f"{site}/page" and fetched.content_type == "text/html; charset=utf-8"
    assert b"Herons nest in reeds." in fetched.data


async def test_a_redirect_is_checked_again(site: str) -> None:
    """Without the allowance the first hop is already refused; the redirect target is checked as a new URL."""
    with pytest.raises(ForbiddenAddressError):
        await UrlFetcher().fetch(f"{site}/redirect-home", max_bytes=10_000)


async def test_too_large_missing_and_unreachable_pages_are_clear_errors(site: str) -> None:
    fetcher = UrlFetcher(allow_private=True, timeout_s=5)
    with pytest.raises(PayloadTooLargeError):
        await fetcher.fetch(f"{site}/big", max_bytes=1000)
    with pytest.raises(UpstreamUnavailableError, match="404"):
        await fetcher.fetch(f"{site}/missing", max_bytes=1000)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    closed = server.server_address[1]
    server.server_close()
    with pytest.raises(UpstreamUnavailableError) as unreachable:
        await fetcher.fetch(f"http://127.0.0.1:{closed}/", max_bytes=1000)
    assert unreachable.value.code == "url_unreachable"


async def test_a_name_that_does_not_resolve_is_the_users_error_not_ours() -> None:
    with pytest.raises(ValidationFailedError) as unknown:
        await UrlFetcher().check("http://no-such-host.invalid/")
    assert unknown.value.code == "url_unreachable"
