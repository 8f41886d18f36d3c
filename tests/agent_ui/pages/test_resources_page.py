"""The Resources page: several files dropped at once follow their ingestion to ready, a search marks the matching
words and opens the passage, refusals are plain notifications, a failed one is indexed again, deleting removes it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from nicegui import ElementFilter, ui
from nicegui.element import Element
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing import User

from agent_ui.components.resources import describe_progress, highlighted, overall_fraction
from services.db import Database
from services.jobs import JobRead
from services.rag.models import RagResource
from services.runs import Progress
from services.settings import DatabaseSettings
from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.services.rag.files import PAGE7_SENTENCE, encrypted_pdf, png_bytes, ten_page_pdf

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NOTES = b"# Field notes\n\nThe kingfisher nests in the clay bank by the mill race.\n"


async def open_resources(user: User, email: str) -> None:
    await register_in_ui(user, email)
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/resources")
    await user.should_see(marker="no-resources", retries=50)


async def drop(user: User, *files: tuple[str, bytes, str]) -> None:
    """What the browser sends when files are dropped on the upload area (one batch)."""
    upload = next(iter(user.find(ui.upload).elements))
    assert isinstance(upload, ui.upload)
    await upload.handle_uploads([SmallFileUpload(name, kind, data) for name, data, kind in files])


def marked(element: Element, marker: str) -> Element:
    return next(child for child in element.descendants() if marker in child._markers)


def in_order(user: User, marker: str) -> list[Element]:
    """The elements with ``marker`` in page order (``user.find`` gives a set)."""
    assert user.client is not None
    with user.client:
        return list(ElementFilter(marker=marker, local_scope=False))


def rows(user: User) -> dict[str, dict[str, str]]:
    """Each resource row by its title: its status, the line under the title and, when shown, the failure reason."""
    shown: dict[str, dict[str, str]] = {}
    for card in in_order(user, "resource-row"):
        reason = marked(card, "resource-reason")
        shown[marked(card, "resource-title").text] = {  # type: ignore[attr-defined]
            "status": marked(card, "resource-status").text,  # type: ignore[attr-defined]
            "meta": marked(card, "resource-meta").text,  # type: ignore[attr-defined]
            "reason": reason.text if reason.visible else "",  # type: ignore[attr-defined]
            "id": next(m for m in card._markers if m.startswith("resource-rsc_")).removeprefix("resource-"),
        }
    return shown


async def until(user: User, ready: Callable[[dict[str, dict[str, str]]], bool]) -> dict[str, dict[str, str]]:
    """The rows once ``ready`` holds for them (the page polls while anything is processing)."""
    shown: dict[str, dict[str, str]] = {}
    for _ in range(600):
        shown = rows(user)
        if ready(shown):
            return shown
        await asyncio.sleep(0.1)
    raise AssertionError(f"the rows never got there: {shown}")


async def stored(database_url: str, resource_id: str) -> RagResource | None:
    """The resource's row as another process sees it."""
    db = Database(database_url, DatabaseSettings())
    try:
        async with db.transaction(readonly=True) as session:
            return await session.get(RagResource, resource_id)
    finally:
        await db.stop()


def timer_active(user: User) -> bool:
    return any(timer.active for timer in user.find(ui.timer).elements)  # type: ignore[attr-defined]


async def test_dropped_files_are_indexed_searched_and_open_their_passage(ui_env: str, user: User) -> None:
    await open_resources(user, "reader@example.com")
    await drop(user, ("handbook.pdf", ten_page_pdf(), "application/pdf"), ("notes.md", NOTES, "text/markdown"))

    shown = await until(user, lambda r: len(r) == 2)
    assert {row["status"] for row in shown.values()} <= {"processing", "ready"}
    shown = await until(user, lambda r: all(row["status"] == "ready" for row in r.values()))
    assert set(shown) == {"handbook", "notes"}
    assert shown["handbook"]["meta"].startswith("PDF · 10 pages · ")
    assert " chunks · " in shown["handbook"]["meta"] and " UTC" in shown["handbook"]["meta"]
    assert shown["notes"]["meta"].startswith("Markdown · 1 chunk · ")
    await until(user, lambda _: not timer_active(user))  # nothing processing: the polling stopped

    user.find(marker="search-query").type("heron ledger Quillbrook")
    user.find(marker="search-button").click()
    await user.should_see(marker="search-hit", retries=100)
    first = in_order(user, "search-hit")[0]
    assert marked(first, "hit-title").text == "handbook"  # type: ignore[attr-defined]
    assert marked(first, "hit-where").text == "page 7"  # type: ignore[attr-defined]
    assert marked(first, "hit-score").text.startswith("score ")  # type: ignore[attr-defined]
    snippet = marked(first, "hit-snippet").content  # type: ignore[attr-defined]
    assert "<mark>heron</mark>" in snippet and "<mark>ledger</mark>" in snippet and "<mark>Quillbrook</mark>" in snippet

    chunk_marker = next(m for m in first._markers if m.startswith("hit-chk_"))
    user.find(marker=chunk_marker).click()
    await user.should_see("page 7 of 10", retries=50)
    passage = next(iter(user.find(marker="passage-text").elements)).content  # type: ignore[attr-defined]
    opened, _, after = passage.partition("<mark>")
    inside = after.partition("</mark>")[0]
    assert PAGE7_SENTENCE in inside and "Page 7 of the archive handbook." in opened + inside, passage
    assert "Page 6 of" not in passage and "Page 8 of" not in passage  # the page, not the whole document


@SQLITE_ONLY  # the page's behaviour; the database plays no part
async def test_refusals_are_plain_notifications(ui_env: str, user: User) -> None:
    await open_resources(user, "refused@example.com")
    await drop(user, ("photo.png", png_bytes(), "image/png"))
    await user.should_see("photo.png was not added: the file is a PNG image, which cannot be indexed", retries=50)

    user.find(marker="add-url").type("not an address")
    user.find(marker="add-url-button").click()
    await user.should_see("Enter a full web address, starting with http:// or https://.")
    user.find(marker="add-url").clear().type("http://127.0.0.1:9/private")
    user.find(marker="add-url-button").click()
    await user.should_see("http://127.0.0.1:9/private cannot be fetched: 127.0.0.1 leads to a private or local address")
    assert rows(user) == {}  # nothing was created
    await user.should_see(marker="no-resources")


@pytest.fixture
def small_uploads(ui_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_UI_RAG__MAX_UPLOAD_BYTES", "2048")


@SQLITE_ONLY  # the page's behaviour; the database plays no part
async def test_a_file_past_the_limit_is_refused_in_the_browser_and_on_the_server(
    small_uploads: None, user: User
) -> None:
    await open_resources(user, "big@example.com")
    upload = next(iter(user.find(ui.upload).elements))
    assert upload.props["max-file-size"] == 2048  # the browser refuses it before sending
    await drop(user, ("big.txt", b"word " * 1000, "text/plain"))  # a request that skipped the browser
    await user.should_see("big.txt is too large: 5.0 KB, and files are limited to 2.0 KB.", retries=50)
    assert rows(user) == {}


@SQLITE_ONLY  # the page's behaviour; the database plays no part
async def test_pasted_text_shows_as_text_and_its_markup_never_runs(ui_env: str, user: User) -> None:
    await open_resources(user, "paster@example.com")
    user.find(marker="paste-open").click()
    user.find(marker="paste-title").type("Kettle <b>notes</b>")
    user.find(marker="paste-text").type("The kettle whistles at dawn. <img src=x onerror=alert(1)> & more")
    user.find(marker="paste-add").click()
    shown = await until(user, lambda r: r.get("Kettle <b>notes</b>", {}).get("status") == "ready")
    assert shown["Kettle <b>notes</b>"]["meta"].startswith("Pasted text · 1 chunk · ")

    user.find(marker="search-query").type("kettle whistles")
    user.find(marker="search-query").trigger("keydown.enter")
    await user.should_see(marker="search-hit", retries=100)
    hit = in_order(user, "search-hit")[0]
    assert marked(hit, "hit-title").text == "Kettle <b>notes</b>"  # type: ignore[attr-defined]  # a label: text
    snippet = marked(hit, "hit-snippet").content  # type: ignore[attr-defined]
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; more" in snippet and "<img" not in snippet
    assert "<mark>kettle</mark> <mark>whistles</mark>" in snippet


@SQLITE_ONLY  # the page's behaviour; the database plays no part
async def test_a_failed_resource_says_why_and_can_be_indexed_again_then_deleted(ui_env: str, user: User) -> None:
    await open_resources(user, "locked@example.com")
    await drop(user, ("locked.pdf", encrypted_pdf(), "application/pdf"))
    shown = await until(user, lambda r: r.get("locked", {}).get("status") == "failed")
    assert shown["locked"]["reason"] == "the PDF is encrypted (password protected)"
    resource_id = shown["locked"]["id"]
    before = await stored(ui_env, resource_id)
    assert before is not None and before.job_id is not None

    user.find(marker=f"reingest-{resource_id}").click()
    await user.should_see("Indexing “locked” again", retries=50)
    after = await stored(ui_env, resource_id)
    assert after is not None and after.job_id not in (None, before.job_id)  # a new ingestion job
    shown = await until(user, lambda r: r["locked"]["status"] == "failed")
    assert shown["locked"]["reason"] == "the PDF is encrypted (password protected)"

    user.find(marker=f"delete-{resource_id}").click()
    user.find(marker="confirm-delete").click()
    await user.should_see(marker="no-resources", retries=50)
    assert await stored(ui_env, resource_id) is None


async def test_resources_are_each_users_own(ui_env: str, user: User) -> None:
    await open_resources(user, "first@example.com")
    await drop(user, ("notes.md", NOTES, "text/markdown"))
    await until(user, lambda r: r.get("notes", {}).get("status") == "ready")

    user.http_client.cookies.clear()
    await open_resources(user, "second@example.com")
    assert rows(user) == {}
    user.find(marker="search-query").type("kingfisher")
    user.find(marker="search-button").click()
    await user.should_see(marker="no-hits", retries=50)


@pytest.fixture
def no_rag(ui_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_UI_RAG__ENABLED", "false")


@SQLITE_ONLY  # the page's behaviour; the database plays no part
async def test_the_page_says_when_resources_are_off(no_rag: None, user: User) -> None:
    await user.open("/resources")
    await user.should_see("Sign in")  # signed out: the page asks to sign in first
    await register_in_ui(user, "offline@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/resources")
    await user.should_see(marker="resources-off", retries=50)


def job(stage: str, done: float | None, total: float | None) -> JobRead:
    progress = Progress(stage=stage, done=done, total=total)
    return JobRead(id="run_1", kind="rag_ingest", status="running", params={}, progress=progress,
                   fraction=progress.fraction, result=None, error=None, artifacts=[],
                   created_at=datetime.now(UTC), started_at=None, finished_at=None)  # fmt: skip


def test_the_bar_moves_forward_through_the_stages() -> None:
    assert overall_fraction(None) is None and describe_progress(None) == "Waiting to start"
    assert overall_fraction(job("queued", None, None)) is None
    steps = [job("extracting", 1, 10), job("extracting", 10, 10), job("embedding", 0, 40), job("embedding", 20, 40),
             job("indexing", 40, 40)]  # fmt: skip
    fractions = [overall_fraction(step) for step in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert describe_progress(steps[3]) == "Embedding · 20 of 40 chunks"
    assert describe_progress(steps[0]) == "Reading · 1 of 10 pages"


def test_highlighting_escapes_everything_but_its_own_marks() -> None:
    text = "<b>bold</b> & a heron"
    assert highlighted(text, [(16, 21), (0, 3)]) == "<mark>&lt;b&gt;</mark>bold&lt;/b&gt; &amp; a <mark>heron</mark>"
    assert highlighted("abcdef", [(1, 4), (2, 5), (-3, 0), (5, 99)]) == "a<mark>bcd</mark>e<mark>f</mark>"
    assert highlighted("", []) == ""
