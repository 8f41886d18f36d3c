"""Generate → Prose through the NiceGUI `user` fixture, written by the scripted upstream: an article streams in (text
on the page before the run ends), is saved and shown again from its link; a slow one stopped keeps what was written,
one cut at the length limit says so; another user's link shows "not found"; a grounded one lists its source, which
opens its passage; a refusal (no credits, a resource not ready, the model down) is said in plain words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlmodel import select

from agent_ui.components.prose import Writing, finish_note, problem, source_of, word_count
from agent_ui.pages.prose import PATH
from services.rag.models import RagResource
from services.rag.service import Upload
from services.runs import RunEvent
from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.agent_ui.pages.test_chat_page import app_services, eventually, marked, me, ready_resource, texts
from tests.upstream import ScriptedUpstream, Step, words

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the API's tests run both
WORDS = [f"w{i} " for i in range(40)]
ARTICLE = "# Tides\n\n" + "".join(WORDS)


async def signed_in(user: User, email: str) -> None:
    await register_in_ui(user, email)
    await user.should_see(marker="empty-thread", retries=100)
    await user.open(PATH)
    await user.should_see(marker="prose-write", retries=50)  # the form is built


def one(user: User, marker: str) -> ui.element:
    (element,) = marked(user, marker)
    return element


def shown_text(user: User) -> str:
    """The markdown on the page (empty before the first words arrive)."""
    found = marked(user, "prose-text")
    return found[0].content if found else ""  # type: ignore[attr-defined]


async def write(user: User, prompt: str, **choices: str) -> None:
    user.find(marker="prose-prompt").clear().type(prompt)
    for name, value in choices.items():
        one(user, f"prose-{name}").set_value(value)  # type: ignore[attr-defined]
    user.find(marker="prose-write").click()


def test_the_events_are_read_into_the_text_its_sources_and_how_it_ended() -> None:
    writing = Writing()
    events: list[tuple[str, dict[str, Any]]] = [("run", {"run_id": "run_1", "model": "m"}),
              ("citation", {"n": 1, "resource_id": "rsc_1", "chunk_id": "chk_1", "title": "Notes", "page": 2,
                            "heading": None, "position": 2, "snippet": "…"}),
              ("content.delta", {"text": "Hello "}), ("content.delta", {"text": "world [1]."}),
              ("done", {"finish_reason": "length"})]  # fmt: skip
    for n, (kind, data) in enumerate(events, 1):
        assert not writing.ended
        writing.apply(RunEvent(n, kind, data))
    assert writing.text == "Hello world [1]." and writing.ended and writing.last_id == 5
    assert writing.sources[1].label == "Notes, p. 2"  # the page at the top level, not in `position`
    assert finish_note(writing.finish_reason) == "Cut at the length limit: the text ends where the model had to stop."
    assert finish_note("stop") is None
    assert source_of({"n": 1, "title": "x"}) is None  # incomplete: not linked
    assert problem("upstream_unavailable", "scripted: 503") == "The writing model is not reachable right now. Try " \
        "again in a moment."  # fmt: skip
    assert problem("odd", "something broke") == "Something broke."
    assert word_count("# Tides\n\n- **Spring** tides [1], [2, 3] — twice a month.") == 6


@SQLITE_ONLY
async def test_an_article_streams_in_is_saved_and_its_link_shows_it_again(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user, "writer@example.com")
    await user.should_see(marker="no-texts")
    await user.should_see(marker="prose-empty")
    user.find(marker="prose-write").click()  # nothing to write about yet: said, nothing started
    await user.should_see("Say what to write about.")
    assert upstream.requests == []

    upstream.push(Step(text=["# Tides\n\n", *WORDS], rate=25))  # well over a second of text
    await write(user, "write about tides", length="short")
    await user.should_see(marker="prose-stop", retries=100)
    await eventually(lambda: 0 < len(shown_text(user)) < len(ARTICLE), retries=100)  # some of it, before the end
    assert ARTICLE.startswith(shown_text(user))
    assert not one(user, "prose-write").enabled  # type: ignore[attr-defined]  # one text at a time
    await user.should_see(marker="prose-download", retries=200)
    assert shown_text(user) == ARTICLE
    assert texts(user, "prose-state") == ["Done"] and texts(user, "prose-kind") == ["Article · Short"]
    assert texts(user, "prose-words") == ["41 words"]  # the heading's "#" is no word
    await user.should_not_see(marker="prose-stop")
    await user.should_not_see(marker="prose-note")  # a normal end says nothing more
    await user.should_see(marker="prose-copy")
    system = upstream.requests[-1]["messages"][0]["content"]
    assert "an article" in system and "about 150 words" in system

    href = str(one(user, "prose-download").props["href"])
    artifact_id = href.removeprefix("/api/v1/agent/artifacts/")
    assert href.startswith("/api/v1/agent/artifacts/") and artifact_id
    saved = await app_services().artifacts.download(await me("writer@example.com"), artifact_id)
    assert Path(saved.path).read_text(encoding="utf-8") == ARTICLE.strip() + "\n"
    await eventually(lambda: texts(user, "recent-title") == ["Tides"])  # its title, once saved
    run_id = next(m for m in one(user, "recent-text")._markers if m.startswith("recent-run_"))[7:]

    # its link shows it again (replayed from the database), with the form as it was asked
    await user.open(f"{PATH}?run={run_id}")
    await user.should_see(marker="prose-download", retries=100)
    assert shown_text(user) == ARTICLE
    assert one(user, "prose-prompt").value == "write about tides"  # type: ignore[attr-defined]
    assert one(user, "prose-length").value == "short"  # type: ignore[attr-defined]
    assert one(user, "recent-text").props.get("aria-current") == "page"

    # another user's link: a plain "not found", nothing of it shown
    user.http_client.cookies.clear()
    await signed_in(user, "other@example.com")
    await user.open(f"{PATH}?run={run_id}")
    await user.should_see(marker="prose-not-found", retries=50)
    await user.should_not_see(marker="prose-doc")
    await user.should_see(marker="no-texts")


@SQLITE_ONLY
async def test_a_stopped_text_keeps_what_was_written_and_a_failed_one_says_why(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user, "stopper@example.com")
    upstream.push(Step(text=[f"s{i} " for i in range(200)], rate=20))  # ten seconds unless stopped
    await write(user, "a long story", style="story")
    await eventually(lambda: len(shown_text(user).split()) >= 3, retries=200)
    user.find(marker="prose-stop").click()
    await user.should_see(marker="prose-download", retries=200)
    assert texts(user, "prose-state") == ["Stopped"]
    assert texts(user, "prose-note") == ["Stopped: what was written until then is kept."]
    kept = shown_text(user).split()
    assert 3 <= len(kept) < 200 and kept == [f"s{i}" for i in range(len(kept))]
    await eventually(lambda: texts(user, "recent-status") == ["stopped"])
    assert one(user, "prose-write").enabled  # type: ignore[attr-defined]

    upstream.push(Step(text=words("Once upon a time there was"), finish_reason="length"))  # out of tokens
    user.find(marker="prose-write").click()
    await eventually(lambda: texts(user, "prose-state") == ["Cut short"], retries=200)
    assert texts(user, "prose-note") == ["Cut at the length limit: the text ends where the model had to stop."]
    assert shown_text(user) == "Once upon a time there was"

    upstream.push(Step(status=503))  # the model is down
    user.find(marker="prose-write").click()
    await eventually(lambda: texts(user, "prose-state") == ["Failed"], retries=200)
    assert texts(user, "prose-note") == ["The writing model is not reachable right now. Try again in a moment."]
    await user.should_not_see(marker="prose-download")  # nothing written, nothing saved


@SQLITE_ONLY
async def test_a_grounded_text_lists_its_source_and_a_resource_not_ready_is_refused(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user, "researcher@example.com")
    owner = await me("researcher@example.com")
    await user.should_see(marker="prose-no-resources")  # nothing ready to ground a text in yet
    notes = Upload(filename="tide-notes.txt", data=b"Spring tides follow the full moon.\n", title="Tide notes")
    resource_id = await ready_resource(owner, notes)
    await user.open(PATH)
    await user.should_see(marker="prose-resources", retries=50)

    upstream.push(Step(text=words("Spring tides follow the full moon [1].")))
    await write(user, "summarise my notes", style="summary", resources=[resource_id])  # type: ignore[arg-type]
    await user.should_see(marker="source-chip-1", retries=200)
    assert texts(user, "prose-sources-heading") == ["Sources"]
    assert 'data-cite="1"' in str(one(user, "prose-text").props["innerHTML"])  # [1] in the text opens it too
    assert "[1] (Tide notes) Spring tides" in upstream.requests[-1]["messages"][-1]["content"]
    user.find(marker="source-chip-1").click()
    await eventually(lambda: texts(user, "passage-title") == ["Tide notes"])  # its passage, beside the text
    assert "Spring tides follow the full moon." in str(one(user, "passage-text").content)  # type: ignore[attr-defined]

    async with app_services().db.transaction() as session:  # being indexed again meanwhile
        resource = (await session.exec(select(RagResource).where(RagResource.id == resource_id))).one()
        resource.status = "processing"
        session.add(resource)
    requests = len(upstream.requests)
    user.find(marker="prose-write").click()
    await user.should_see("One of the chosen resources is not ready yet", retries=100)
    assert len(upstream.requests) == requests


@pytest.fixture
def broke(monkeypatch: pytest.MonkeyPatch) -> None:
    """New accounts start with no credits in the app the `user` fixture builds (request it before `user`)."""
    monkeypatch.setenv("AGENT_UI_CREDITS__SIGNUP_GRANT", "0")


@SQLITE_ONLY
async def test_without_credits_nothing_is_written_and_the_page_says_so(
    ui_env: str, broke: None, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user, "broke@example.com")
    await write(user, "write about tides")
    await user.should_see("You are out of credits for this.", retries=100)
    assert upstream.requests == []
    await user.should_see(marker="prose-empty")  # nothing started
    assert one(user, "prose-prompt").value == "write about tides"  # type: ignore[attr-defined]  # kept
