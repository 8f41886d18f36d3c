"""The chat's card for generation tools through the NiceGUI `user` fixture: the scripted model calls the tool, the
job the tool started takes its own scripted answers (python-pptx renders the deck, LibreOffice draws its
thumbnails, flite speaks the podcast). The card follows the job to its thumbnails and links, the player, or the
text; Cancel cancels the job while stopping the chat turn does not; a reloaded chat looks the job up again."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from nicegui import ui
from nicegui.testing import User

from agent_ui.components.generation_card import (
    KINDS,
    deck_fraction,
    describe_deck,
    ended_text,
    export_url,
    job_progress,
    job_title,
    open_url,
    plain_error,
)
from services.jobs import JobRead
from services.runs import Progress
from tests.agent_ui.api.v1.test_podcasts import script_steps
from tests.agent_ui.pages.test_chat_page import (
    answered,
    app_services,
    ask,
    eventually,
    marked,
    me,
    newest_chat,
    signed_in,
    texts,
)
from tests.upstream import ScriptedUpstream, Step, words

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the API's tests run both
DECK_CALL = Step(tool_calls=[("generate_deck", {"topic": "lighthouses", "slide_count": 6})])
# The turn's answer after the tool: taken only by the request that carries the tool's result (the deck job calls
# the model at the same time and takes the unmatched steps, in order).
AFTER_THE_TOOL = "job_id"
SLIDES = {
    "How a lamp works": ["A wick burns colza oil", "A Fresnel lens bends the light", "Clockwork turns the lens"],
    "From oil to electric light": ["Colza and whale oil", "Coal gas burned brighter", "Electric arcs from 1858"],
    "Famous lighthouses": ["The Pharos of Alexandria", "Eddystone, rebuilt four times", "Bell Rock, 1810"],
    "Keepers on the rock": ["Three keepers a station", "Watches through the night", "Relief boats every month"],
    "Lighthouses today": ["Automated since the 1990s", "LED lamps and solar panels", "Kept as landmarks"],
}


def deck_steps() -> list[Step]:
    """The deck job's answers for a deck from a topic alone: the outline, then each slide, every one bullets (a topic
    without figures gets no table or chart)."""
    outline = {"title": "Lighthouses", "subtitle": "Lamps, keepers and light",
               "slides": [{"title": title, "layout": "bullets"} for title in SLIDES]}  # fmt: skip
    slides = [{"title": title, "bullets": bullets, "notes": f"{bullets[0]}. {bullets[1]}.", "sources": []}
              for title, bullets in SLIDES.items()]  # fmt: skip
    return [Step(text=[json.dumps(outline)]), *[Step(text=[json.dumps(slide)]) for slide in slides]]


def job(status: str, stage: str | None = None, done: float | None = None, total: float | None = None,
        kind: str = "ppt", **params: object) -> JobRead:  # fmt: skip
    progress = Progress(stage=stage, done=done, total=total) if stage else None
    return JobRead(id="run_1", kind=kind, status=status, params=params, progress=progress,
                   fraction=progress.fraction if progress else None, result=None, error=None, artifacts=[],
                   created_at=datetime.now(UTC), started_at=None, finished_at=None)  # fmt: skip


def test_a_deck_job_is_told_in_words_with_its_count_on_one_bar() -> None:
    assert describe_deck(job("queued", "queued")) == "Waiting for a free worker"
    assert describe_deck(job("running", "outline", 0, 1)) == "Planning the slides"
    assert describe_deck(job("running", "slides", 2, 6)) == "Writing slide 3 of 6"
    assert describe_deck(job("running", "slides", 6, 6)) == "Every slide written"
    assert describe_deck(job("running", "rendering", 0, 1)) == "Making the .pptx"
    assert describe_deck(job("running", "thumbnails", 0, 1)) == "Drawing the thumbnails"
    assert job_progress(job("running", "slides", 2, 6)) == (0.367, "Writing slide 3 of 6", "2/6")
    assert job_progress(job("running", "outline", 0, 1))[2] == ""  # a stage of one step has no count
    assert job_progress(job("running", "voices", 3, 10, kind="podcast"))[1:] == ("Voices: line 4 of 10", "3/10")
    stages = [("sources", 1, 1), ("outline", 1, 1), ("slides", 3, 6), ("rendering", 1, 1), ("thumbnails", 1, 1)]
    fractions = [deck_fraction(job("running", s, d, t)) for s, d, t in stages]
    assert fractions == sorted(f or 0.0 for f in fractions) and fractions[-1] == 1.0
    assert deck_fraction(job("queued", "queued")) is None and deck_fraction(job("done")) == 1.0


def test_links_titles_and_endings() -> None:
    assert open_url("ppt", "run_1") == "/generate/slides?deck=run_1"
    assert open_url("podcast", "run_2") == "/generate/podcast?job=run_2"
    assert open_url("prose", "run/3") == "/generate/prose?run=run%2F3"
    assert export_url("run_1") == "/api/v1/agent/slides/run_1/export"
    assert job_title(job("queued", topic="  tides\nand  moons ")) == "tides and moons"
    assert job_title(job("queued", kind="podcast", text="pasted")) == "From your text"
    assert ended_text(KINDS["ppt"], "cancelled", None) == "Cancelled: the deck was not finished."
    assert ended_text(KINDS["podcast"], "failed", "no voice") == "The podcast could not be made: no voice."
    assert plain_error("QuotaExceededError: you have 20 jobs waiting") == "you have 20 jobs waiting"
    assert plain_error("timed out after 30 s") == "timed out after 30 s"


def link(user: User, marker: str) -> str:
    (element,) = marked(user, marker)
    return str(element.props["href"])


async def thumbnails_shown(user: User) -> None:
    """Four slides drawn in the card (LibreOffice draws them as the job's last stage)."""
    await eventually(lambda: len(marked(user, "gen-thumb-img")) == 4, retries=1200)


@SQLITE_ONLY
async def test_a_deck_asked_for_in_chat_shows_its_progress_then_its_slides_and_links_also_after_a_reload(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    steps = deck_steps()
    steps[2] = dataclasses.replace(steps[2], stall_s=1.5)  # the second slide takes a moment: the progress shows
    upstream.push(DECK_CALL, Step(text=words("Your deck is being made below."), match=AFTER_THE_TOOL), *steps)
    await ask(user, "Make me a 6-slide deck about lighthouses")
    await user.should_see(marker="generation-card-ppt", retries=100)
    await user.should_see(marker="gen-progress", retries=100)
    await eventually(lambda: texts(user, "gen-stage") == ["Writing slide 3 of 6"], retries=200)
    assert texts(user, "gen-count") == ["2/6"]
    assert texts(user, "gen-title") == ["lighthouses"] and texts(user, "gen-caption") == ["Slides · 6 slides"]
    await user.should_see(marker="gen-cancel")
    await answered(user, "Your deck is being made below.")  # the turn ends while the deck is still made

    await thumbnails_shown(user)
    await user.should_not_see(marker="gen-progress")
    assert texts(user, "gen-title") == ["Lighthouses"]  # the deck's own title, from its outline
    assert texts(user, "gen-status") == ["Ready"]
    deck_id = (await app_services().jobs.list_jobs(await me(), family="generation", limit=1, cursor=None)).items[0].id
    images = [str(image.props["src"]) for image in marked(user, "gen-thumb-img")]
    assert [src.split("?v=")[0] for src in images] == [f"/api/v1/agent/slides/{deck_id}/slides/{i}/thumbnail"
                                                       for i in range(4)]  # fmt: skip
    assert texts(user, "gen-more") == ["+2"]  # six slides, four shown
    assert link(user, "gen-open") == f"/generate/slides?deck={deck_id}"
    assert link(user, "gen-download") == f"/api/v1/agent/slides/{deck_id}/export"

    await user.open(f"/chat/{await newest_chat(await me())}")  # the chat again, from its stored history
    await user.should_see(marker="generation-card-ppt", retries=100)
    await thumbnails_shown(user)
    assert link(user, "gen-open") == f"/generate/slides?deck={deck_id}"
    assert marked(user, "gen-progress") == []


@SQLITE_ONLY
async def test_cancel_in_the_card_cancels_the_job_and_stopping_the_turn_does_not(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    owner = await me()
    jobs = app_services().jobs

    # Stopping the turn: the deck goes on and is made
    talk = Step(text=[f"word{i} " for i in range(400)], rate=40, match=AFTER_THE_TOOL)  # ten seconds unless stopped
    upstream.push(DECK_CALL, talk, *deck_steps())
    await ask(user, "A deck about lighthouses, and talk meanwhile")
    await user.should_see("word3", retries=200)
    user.find(marker="stop").click()
    await user.should_see("Stopped.", retries=100)
    await thumbnails_shown(user)
    first = (await jobs.list_jobs(owner, family="generation", limit=1, cursor=None)).items[0]
    assert first.status == "done"
    first_chat = await newest_chat(owner)

    # Cancel in the card: the job is cancelled while it plans the slides (in a new chat: in this one, the history's
    # tool result would match the answer meant for after the new call)
    await user.open("/")
    await user.should_see(marker="empty-thread", retries=100)
    steps = deck_steps()
    steps[0] = dataclasses.replace(steps[0], stall_s=8.0)
    upstream.push(DECK_CALL, Step(text=words("It is on its way."), match=AFTER_THE_TOOL), *steps)
    await ask(user, "Another one, please")
    await answered(user, "It is on its way.")
    await eventually(lambda: "Planning the slides" in texts(user, "gen-stage"), retries=200)
    user.find(marker="gen-cancel").click()
    await user.should_see(marker="gen-cancelled", retries=200)
    assert texts(user, "gen-cancelled") == ["Cancelled: the deck was not finished."]
    second = (await jobs.list_jobs(owner, family="generation", limit=1, cursor=None)).items[0]
    assert second.id != first.id and second.status == "cancelled"
    await user.open(f"/chat/{first_chat}")
    await thumbnails_shown(user)  # the first deck is untouched


@SQLITE_ONLY
async def test_a_text_is_shown_as_it_is_written_then_with_its_file(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user)
    body = "# Keepers of the light\n\n" + " ".join(f"Line{i} of the keepers' story." for i in range(60))
    upstream.push(
        Step(tool_calls=[("write_prose", {"prompt": "a story about lighthouse keepers", "style": "story"})]),
        Step(text=words("It is being written below."), match="run_id"),
        Step(text=words(body), rate=60),  # the text itself: about five seconds
    )
    await ask(user, "Write me a story about lighthouse keepers")
    await user.should_see(marker="generation-card-prose", retries=100)
    await user.should_see(marker="gen-text", retries=200)  # while it is written
    assert marked(user, "gen-cancel")[0].text == "Stop"  # type: ignore[attr-defined]
    await user.should_see(marker="gen-download", retries=400)
    (markdown,) = marked(user, "gen-markdown")
    assert isinstance(markdown, ui.markdown) and markdown.content.strip() == body.strip()
    assert texts(user, "gen-title") == ["Keepers of the light"]
    run_id = link(user, "gen-open").removeprefix("/generate/prose?run=")
    assert run_id.startswith("run_")
    artifact = (await app_services().runs.get(await me(), run_id)).result["artifact_id"]  # type: ignore[index]
    assert link(user, "gen-download") == f"/api/v1/agent/artifacts/{artifact}"
    user.find(marker="gen-expand").click()  # a long text is folded: it opens
    (box,) = marked(user, "gen-text")
    assert "gen-text--open" in box.classes


@SQLITE_ONLY
async def test_a_podcast_card_ends_with_its_player(ui_env: str, user: User, upstream: ScriptedUpstream) -> None:
    await signed_in(user)
    upstream.push(
        Step(tool_calls=[("generate_podcast", {"topic": "How lighthouses work"})]),
        Step(text=words("Your podcast is being made."), match=AFTER_THE_TOOL),
        *script_steps(grounded=False),
    )
    await ask(user, "A short podcast about lighthouses")
    await user.should_see(marker="generation-card-podcast", retries=100)
    await user.should_see(marker="gen-audio", retries=1200)  # flite speaks ten lines, then they are mixed
    (audio,) = marked(user, "gen-audio")
    assert isinstance(audio, ui.audio) and str(audio.props["src"]).startswith("/api/v1/agent/artifacts/")
    job_id = link(user, "gen-open").removeprefix("/generate/podcast?job=")
    found = await app_services().jobs.get(await me(), job_id)
    assert found.status == "done" and str(audio.props["src"]).split("?")[0].endswith(found.result["artifact_id"])  # type: ignore[index]


@SQLITE_ONLY
async def test_a_refused_call_and_a_failed_deck_say_why(ui_env: str, user: User, upstream: ScriptedUpstream) -> None:
    await signed_in(user)
    upstream.push(
        Step(tool_calls=[("generate_deck", {"topic": "lighthouses", "slide_count": 99})]),
        Step(text=words("That was too many slides."), match="invalid arguments"),
    )
    await ask(user, "A deck of 99 slides")
    await answered(user, "That was too many slides.")
    (error,) = texts(user, "gen-error")
    assert error.startswith("The deck could not be started: invalid arguments: slide_count")
    assert texts(user, "gen-status") == ["Failed"]
    assert (await app_services().jobs.list_jobs(await me(), family="generation", limit=5, cursor=None)).items == []

    await user.open("/")
    await user.should_see(marker="empty-thread", retries=100)
    upstream.push(DECK_CALL, Step(text=words("Coming up."), match=AFTER_THE_TOOL))  # then the job's model: no JSON
    await ask(user, "A deck about lighthouses")
    await answered(user, "Coming up.")
    await eventually(lambda: bool(texts(user, "gen-error")), retries=400)
    assert texts(user, "gen-error")[0].startswith("The deck could not be made: ")
    assert texts(user, "gen-status") == ["Failed"] and marked(user, "gen-cancel") == []
