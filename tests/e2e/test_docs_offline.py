"""The interactive API docs work on a machine with no network: every request to another host is aborted, and
Swagger UI and ReDoc still render the operations from this server's own files, without asking any other host."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, Route, expect

pytestmark = pytest.mark.e2e


@pytest.fixture
async def offline(live_url: str, page: Page) -> AsyncIterator[list[str]]:
    """The page with the network cut off except for the live server; yields the foreign URLs it tried."""
    own = urlsplit(live_url).netloc
    foreign: list[str] = []

    async def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == own:
            await route.continue_()
        else:
            foreign.append(url)
            await route.abort("internetdisconnected")

    await page.context.route("**/*", only_local)
    yield foreign
    await page.context.unroute("**/*")


async def test_swagger_ui_renders_the_operations_offline(live_url: str, page: Page, offline: list[str]) -> None:
    await page.goto(live_url + "/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("agent-ui API")
    health = page.locator(".opblock", has_text="/api/v1/health")
    await expect(health).to_be_visible()
    assert await page.locator(".opblock").count() >= 10

    await health.locator(".opblock-summary").click()  # the scripts work: an operation opens and can be tried
    await health.get_by_role("button", name="Try it out").click()
    await health.get_by_role("button", name="Execute").click()
    await expect(health.locator(".responses-table.live-responses-table")).to_contain_text("200")
    assert offline == []


async def test_redoc_renders_the_operations_offline(live_url: str, page: Page, offline: list[str]) -> None:
    await page.goto(live_url + "/redoc")
    await expect(page.get_by_role("heading", name="agent-ui API", exact=False).first).to_be_visible()
    await expect(page.locator("[data-section-id^='operation/']").first).to_be_visible()
    assert await page.locator("[data-section-id^='operation/']").count() >= 10
    assert offline == []
