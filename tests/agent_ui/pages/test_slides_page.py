"""The slides page through the NiceGUI `user` fixture: a deck made from the form (the scripted model writes it,
python-pptx renders it, LibreOffice draws its thumbnails) shows its progress, then its six slides; slide 3 is
edited and its thumbnail redrawn; a slide is moved (checked through the service too); the URL opens the deck
again; a file that is not a .pptx is refused as a template; another user's link shows "not found"."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from nicegui import ui
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing import User
from pptx import Presentation

from agent_ui.components.slides import (
    chart_text,
    describe_progress,
    job_title,
    moved,
    overall_fraction,
    parse_chart,
    parse_table,
    step_states,
    table_text,
)
from services.generation import DeckService
from services.generation.schemas import ChartData, TableData
from services.jobs import JobRead
from services.runs import Progress
from tests.agent_ui.api.v1.test_slides import deck_steps
from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.agent_ui.pages.test_chat_page import app_services, eventually, marked, me, texts
from tests.upstream import ScriptedUpstream, Step

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the API's tests run both
EDITED = "Famous lighthouses of the world"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


async def signed_in(user: User, email: str) -> None:
    await register_in_ui(user, email)
    await user.should_see(marker="empty-thread", retries=100)


def lighthouse_steps() -> tuple[list[Step], str, list[str]]:
    """The API test's deck from a topic alone (no table or chart), its section divider moved before the last slide
    (a deck never ends on one: the service makes a last divider bullets); its title and slide titles."""
    outline_step, *slide_steps = deck_steps(figures=False)
    outline = json.loads(outline_step.text[0])
    planned = list(zip(outline["slides"], slide_steps, strict=True))
    if planned[-1][0]["layout"] == "section":
        planned.insert(len(planned) - 2, planned.pop())
    outline["slides"] = [plan for plan, _ in planned]
    steps = [Step(text=[json.dumps(outline)]), *[step for _, step in planned]]
    return steps, outline["title"], [outline["title"], *[plan["title"] for plan in outline["slides"]]]


def job(status: str, stage: str | None = None, done: float | None = None, total: float | None = None,
        **params: Any) -> JobRead:  # fmt: skip
    progress = Progress(stage=stage, done=done, total=total) if stage else None
    return JobRead(id="run_1", kind="ppt", status=status, params=params, progress=progress,
                   fraction=progress.fraction if progress else None, result=None, error=None, artifacts=[],
                   created_at=datetime.now(UTC), started_at=None, finished_at=None)  # fmt: skip


def thumb_sources(user: User) -> list[str | None]:
    """Each card's picture, in grid order (None while it has none)."""
    return [card.props.get("src") if card.visible else None for card in marked(user, "slide-thumb-img")
            if any("slide-card" in a._markers for a in _ancestors(card))]  # fmt: skip


def _ancestors(element: ui.element) -> list[ui.element]:
    found = []
    while element.parent_slot is not None:
        element = element.parent_slot.parent
        found.append(element)
    return found


def test_progress_is_told_by_stage_and_the_editor_reads_back_what_it_writes() -> None:
    assert describe_progress(job("queued", "queued")) == "Waiting for a free worker"
    assert describe_progress(job("running", "outline", 0, 1)) == "Planning the slides"
    assert describe_progress(job("running", "slides", 1, 6)) == "Writing slide 2 of 6"
    assert describe_progress(job("running", "rendering", 0, 1)) == "Making the .pptx"
    assert describe_progress(job("running", "thumbnails", 0, 1)) == "Drawing the thumbnails"
    stages = [("outline", 0, 1), ("slides", 1, 6), ("slides", 5, 6), ("rendering", 1, 1), ("thumbnails", 1, 1)]
    fractions = [overall_fraction(job("running", *stage)) or 0.0 for stage in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and overall_fraction(job("queued")) is None
    assert step_states(job("running", "slides", 2, 6)) == {"outline": "done", "slides": "current",
                                                           "rendering": "todo", "thumbnails": "todo"}  # fmt: skip
    assert set(step_states(job("done")).values()) == {"done"}
    assert job_title(job("queued", topic="tides")) == "tides" and job_title(job("queued")) == "From your resources"

    assert moved(4, 0, 2) == [1, 2, 0, 3] and moved(4, 3, 0) == [3, 0, 1, 2]
    table = TableData(columns=["Name", "Year"], rows=[["Pharos", "280 BC"]])
    assert parse_table(table_text(table)) == table and parse_table("  ") is None
    chart = ChartData(type="line", categories=["1800", "1900"], series=[{"name": "Range", "values": [10, 20.5]}])  # type: ignore[list-item]
    assert parse_chart(chart_text(chart), "line") == chart
    with pytest.raises(ValueError, match="not a number"):
        parse_chart("a | b\nRange | 1 | many", "bar")


@SQLITE_ONLY
async def test_a_deck_is_made_edited_and_reordered_and_its_link_is_the_owners_alone(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user, "presenter@example.com")
    await user.open("/generate/slides")
    await user.should_see(marker="deck-generate", retries=50)
    await user.should_see(marker="no-decks")
    (count,) = marked(user, "deck-count")
    assert count.value == 6  # type: ignore[attr-defined]

    user.find(marker="deck-generate").click()  # nothing to make slides about yet: said, nothing started
    await user.should_see("Say what the deck should be about.")
    assert upstream.requests == []

    steps, title, titles = lighthouse_steps()
    steps[2] = dataclasses.replace(steps[2], stall_s=1.0)  # the second slide takes a moment: progress shows
    upstream.push(*steps)
    user.find(marker="deck-topic").type("How lighthouses work")
    user.find(marker="theme-ocean").click()
    user.find(marker="deck-generate").click()
    await user.should_see(marker="deck-progress", retries=100)
    (stage,) = marked(user, "deck-stage")
    await eventually(lambda: stage.text.startswith("Writing slide"), retries=200)  # type: ignore[attr-defined]
    (slides_step,) = marked(user, "step-slides")
    assert slides_step.props.get("aria-current") == "step"
    await user.should_see(marker="deck-cancel")

    # written, rendered, thumbnails drawn (LibreOffice: a few seconds)
    await eventually(lambda: bool(marked(user, "deck") or marked(user, "deck-error")), retries=1200)
    assert texts(user, "deck-error") == []
    await user.should_not_see(marker="deck-progress")
    assert texts(user, "deck-title") == [title]
    assert texts(user, "slide-title") == titles
    assert texts(user, "slide-number") == ["1", "2", "3", "4", "5", "6"]
    assert "Ocean theme" in texts(user, "deck-meta")[0]
    sources = thumb_sources(user)
    assert all(source and "/thumbnail?v=" in source for source in sources) and len(set(sources)) == 6, sources
    (download,) = marked(user, "deck-download")
    deck_id = next(m for m in marked(user, "recent-deck")[0]._markers if m.startswith("recent-run_"))[7:]
    assert download.props["href"] == f"/api/v1/agent/slides/{deck_id}/export"
    owner = await me("presenter@example.com")
    decks = app_services().get(DeckService)

    # slide 3 edited in the editor: its title in the grid, a new version in the service, its thumbnail redrawn
    user.find(marker="slide-open-2").click()
    await eventually(lambda: texts(user, "editor-heading") == ["Slide 3 of 6"])
    (layout,) = marked(user, "editor-layout")
    assert layout.value == "two_columns"  # type: ignore[attr-defined]
    columns = [field.value.splitlines() for name in ("editor-bullets", "editor-right") for field in marked(user, name)]  # type: ignore[attr-defined]
    assert columns == [["Colza oil", "Smoky flame"], ["Coal gas", "Bright flame"]]
    user.find(marker="editor-title").clear().type(EDITED)
    user.find(marker="editor-save").click()
    await user.should_see("Slide 3 saved", retries=100)
    assert texts(user, "slide-title")[2] == EDITED
    deck = await decks.get(owner, deck_id)
    assert deck.slides[2].title == EDITED and deck.slides[2].version == 2
    assert deck.slides[2].right == ["Coal gas", "Bright flame"]  # the fields not changed are kept
    await eventually(lambda: thumb_sources(user)[2] != sources[2], retries=400)
    assert thumb_sources(user)[2] == deck.slides[2].thumbnail_url
    assert thumb_sources(user)[:2] == sources[:2]  # the others untouched
    user.find(marker="editor-close").click()

    # slide 2 moved one place later: the grid and the service agree on the new order
    user.find(marker="slide-right-1").click()
    expected = [titles[0], EDITED, titles[1], *titles[3:]]
    await eventually(lambda: texts(user, "slide-title") == expected)
    assert [slide.title for slide in (await decks.get(owner, deck_id)).slides] == expected
    # and back by a drag (what static/slides.js tells the grid when card 3 is dropped before card 2)
    user.find(marker="slide-grid").trigger("slidemove", [2, 1])
    expected = [titles[0], titles[1], EDITED, *titles[3:]]
    await eventually(lambda: texts(user, "slide-title") == expected)
    assert [slide.title for slide in (await decks.get(owner, deck_id)).slides] == expected

    # slide 3's versions: the edit is undone by restoring the first, then the model rewrites it as asked
    (editor,) = marked(user, "editor-dialog")
    user.find(marker="slide-open-2").click()
    await eventually(lambda: editor.value)  # type: ignore[attr-defined]
    assert texts(user, "editor-heading") == ["Slide 3 of 6"]
    (versions,) = marked(user, "editor-versions")
    versions.set_value(True)  # type: ignore[attr-defined]
    await eventually(lambda: texts(user, "version-label") == ["v2 · Edited", "v1 · Generated"])
    user.find(marker="restore-1").click()
    await user.should_see("Slide 3 is back to version 1")
    await eventually(lambda: texts(user, "version-label")[0] == "v3 · Restored")
    assert texts(user, "slide-title")[2] == titles[2] and marked(user, "editor-title")[0].value == titles[2]  # type: ignore[attr-defined]
    rewritten = {"title": "Oil against gas", "left": ["Oil: smoky"], "right": ["Gas: bright"], "notes": "Short."}
    upstream.push(Step(text=[json.dumps({**rewritten, "left": ["Oil: smoky", "Oil: cheap"],
                                         "right": ["Gas: bright", "Gas: piped"], "sources": []})]))  # fmt: skip
    user.find(marker="editor-instructions").type("shorter bullets")
    user.find(marker="editor-regenerate").click()
    await user.should_see("Slide 3 rewritten", retries=100)
    assert "shorter bullets" in json.dumps(upstream.requests[-1]["messages"])
    assert texts(user, "slide-title")[2] == "Oil against gas"
    await eventually(lambda: texts(user, "version-label")[0] == "v4 · Rewritten by the model")

    # a slide inserted after it opens in the editor; deleted, the deck is as it was
    user.find(marker="editor-insert").click()
    await eventually(lambda: texts(user, "editor-heading") == ["Slide 4 of 7"])
    assert texts(user, "slide-title")[3] == "New slide"
    user.find(marker="editor-delete").click()
    user.find(marker="slide-delete-confirm").click()
    await user.should_see("Slide 4 deleted")
    expected = [titles[0], titles[1], "Oil against gas", *titles[3:]]
    await eventually(lambda: texts(user, "slide-title") == expected)

    # the URL holds the deck: opened again, it is there as changed
    await user.open(f"/generate/slides?deck={deck_id}")
    await user.should_see(marker="deck", retries=100)
    assert texts(user, "slide-title") == expected

    # another user's link: a plain "not found", nothing of the deck shown
    user.http_client.cookies.clear()
    await signed_in(user, "other@example.com")
    await user.open(f"/generate/slides?deck={deck_id}")
    await user.should_see(marker="deck-not-found", retries=50)
    await user.should_not_see(marker="deck")
    await user.should_see(marker="no-decks")
    assert marked(user, "slide-card") == []


@SQLITE_ONLY
async def test_a_template_must_be_a_pptx_and_an_uploaded_one_can_be_chosen(ui_env: str, user: User) -> None:
    await signed_in(user, "designer@example.com")
    await user.open("/generate/slides")
    await user.should_see(marker="template-upload-open", retries=50)
    user.find(marker="template-upload-open").click()
    await user.should_see(marker="template-dialog")
    upload = next(iter(user.find(marker="template-upload").elements))
    assert isinstance(upload, ui.upload)
    await upload.handle_uploads([SmallFileUpload("brand.pptx", PPTX, b"this is plain text, not a deck")])
    await user.should_see(marker="template-error")
    assert texts(user, "template-error")[0].startswith("brand.pptx is not a PowerPoint template (.pptx)")
    (template,) = marked(user, "deck-template")
    assert list(template.options) == [""]  # type: ignore[attr-defined]  # nothing kept

    data = io.BytesIO()
    Presentation().save(data)
    await upload.handle_uploads([SmallFileUpload("Brand.pptx", PPTX, data.getvalue())])
    await user.should_see("Template “Brand” uploaded")
    await eventually(lambda: len(template.options) == 2)  # type: ignore[attr-defined]
    assert template.value and template.options[template.value] == "Brand"  # type: ignore[attr-defined]
    themes = marked(user, "deck-theme")
    assert all(button.props.get("disabled") for button in themes)  # the template sets the look
