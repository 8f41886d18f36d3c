"""The Generate hub and the podcast page through the NiceGUI `user` fixture: a podcast from a topic (the scripted
model writes it, flite speaks it) shows its progress, then the player and a transcript of 10 lines; a line is
edited and spoken again; the URL keeps the podcast across a reload; another user's link shows "not found"."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User

from agent_ui.components.podcast import clock, describe_progress, job_title, overall_fraction
from services.jobs import JobRead
from services.runs import Progress
from tests.agent_ui.api.v1.test_podcasts import EDITED, OUTLINE, SPOKEN, script_steps
from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.agent_ui.pages.test_chat_page import eventually, marked, texts
from tests.upstream import ScriptedUpstream, Step

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the API's tests run both


async def signed_in(user: User, email: str) -> None:
    await register_in_ui(user, email)
    await user.should_see(marker="empty-thread", retries=100)


def job(status: str, stage: str | None = None, done: float | None = None, total: float | None = None,
        **params: Any) -> JobRead:  # fmt: skip
    progress = Progress(stage=stage, done=done, total=total) if stage else None
    return JobRead(id="run_1", kind="podcast", status=status, params=params, progress=progress,
                   fraction=progress.fraction if progress else None, result=None, error=None, artifacts=[],
                   created_at=datetime.now(UTC), started_at=None, finished_at=None)  # fmt: skip


def test_progress_is_told_in_words_on_one_bar() -> None:
    assert describe_progress(job("queued", "queued")) == "Waiting for a free worker"
    assert describe_progress(job("running", "script", 0, 3)) == "Writing the script: the outline"
    assert describe_progress(job("running", "script", 1, 3)) == "Writing the script: chapter 1 of 2"
    assert describe_progress(job("running", "voices", 2, 10)) == "Voices: line 3 of 10"
    assert describe_progress(job("running", "mixing", 0, 1)) == "Mixing"
    fractions = [overall_fraction(job("running", "script", 1, 3)), overall_fraction(job("running", "voices", 5, 10)),
                 overall_fraction(job("running", "mixing", 1, 1))]  # fmt: skip
    assert fractions == sorted(f or 0.0 for f in fractions) and fractions[-1] == 1.0
    assert overall_fraction(job("queued", "queued")) is None
    assert job_title(job("queued", topic="tides")) == "tides" and job_title(job("queued")) == "From your resources"
    assert (clock(0.4), clock(75.4), clock(3723)) == ("0:00", "1:15", "1:02:03")


@SQLITE_ONLY
async def test_the_hub_shows_a_card_for_each_generator(ui_env: str, user: User) -> None:
    await signed_in(user, "hub@example.com")
    await user.should_see(marker="nav-generate")
    await user.should_not_see(marker="nav-podcast")  # under the hub, not in the drawer
    await user.open("/generate")
    await user.should_see(marker="generator-podcast")
    (card,) = marked(user, "generator-podcast")
    assert isinstance(card, ui.link) and card.props["href"] == "/generate/podcast"
    await user.should_see("Two or more voices talk through a topic")
    for name in ("slides", "prose"):  # the other generators, each a link to its page
        (other,) = marked(user, f"generator-{name}")
        assert isinstance(other, ui.link) and other.props["href"] == f"/generate/{name}"
    assert marked(user, "coming-soon") == []
    user.find(marker="generator-podcast").click()
    await user.should_see(marker="podcast-form", retries=50)
    (generate,) = marked(user, "nav-generate")
    assert generate.props.get("aria-current") == "true"  # the hub's entry stays highlighted on its pages


@SQLITE_ONLY
async def test_a_podcast_from_a_topic_is_made_shown_and_one_line_is_spoken_again(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user, "host@example.com")
    await user.open("/generate/podcast")
    await user.should_see(marker="podcast-form", retries=50)
    await user.should_see(marker="no-podcasts")
    assert [row.value for row in marked(user, "speaker-name")] == ["Alex", "Sam"]  # type: ignore[attr-defined]
    voices = [row.value for row in marked(user, "speaker-voice")]  # type: ignore[attr-defined]
    assert voices == ["flite:slt", "flite:rms"]  # the first offline engine of the order: a female, then a male

    user.find(marker="podcast-generate").click()  # nothing to talk about yet: said, nothing started
    await user.should_see("Say what the podcast should be about.")
    assert upstream.requests == []

    steps = script_steps(grounded=False)
    steps[1] = dataclasses.replace(steps[1], stall_s=1.0)  # the first chapter takes a moment: progress shows
    upstream.push(*steps)
    user.find(marker="podcast-topic").type("How lighthouses work")
    user.find(marker="podcast-generate").click()
    await user.should_see(marker="podcast-progress", retries=100)
    (stage,) = marked(user, "podcast-stage")
    await eventually(lambda: stage.text.startswith("Writing the script"))  # type: ignore[attr-defined]
    await user.should_see(marker="podcast-cancel")
    await user.should_see(marker="recent-podcast")

    await user.should_see(marker="podcast", retries=600)  # flite speaks ten lines, then they are mixed
    await user.should_not_see(marker="podcast-progress")
    assert texts(user, "podcast-title") == [OUTLINE["title"]]
    assert texts(user, "podcast-line-text") == SPOKEN
    assert texts(user, "podcast-line-speaker")[:2] == ["Alex", "Sam"]
    assert [c.split(" · ")[0] for c in texts(user, "podcast-chapter")] == ["1. The lamp", "2. The keepers"]
    (audio,) = marked(user, "podcast-audio")
    assert isinstance(audio, ui.audio)
    source = str(audio.props["src"])
    assert source.startswith("/api/v1/agent/artifacts/") and source.endswith("?v=1")
    lines = marked(user, "podcast-line")
    starts = [float(line.props["data-start"]) for line in lines]
    assert starts == sorted(starts) and starts[0] == 0.0
    job_id = next(m for m in marked(user, "recent-podcast")[0]._markers if m.startswith("recent-run_"))[7:]

    # one line spoken again: its new text, the player on the new version, the later lines moved
    user.find(marker="podcast-line-edit-2").click()
    user.find(marker="podcast-line-draft-2").clear().type(EDITED)
    user.find(marker="podcast-line-save-2").click()
    await eventually(lambda: texts(user, "podcast-line-text")[2] == EDITED, retries=400)
    await user.should_see("Line 3 is spoken again")
    assert texts(user, "podcast-line-text") == [*SPOKEN[:2], EDITED, *SPOKEN[3:]]
    (audio,) = marked(user, "podcast-audio")
    assert str(audio.props["src"]) == source.replace("?v=1", "?v=2")
    moved = [float(line.props["data-start"]) for line in marked(user, "podcast-line")]
    shifts = [new - old for new, old in zip(moved, starts, strict=True)]
    assert shifts[:3] == [0, 0, 0] and all(abs(shift) > 0.05 for shift in shifts[3:]), shifts

    # the URL holds the podcast: opened again, it is there as edited
    await user.open(f"/generate/podcast?job={job_id}")
    await user.should_see(marker="podcast", retries=100)
    assert texts(user, "podcast-line-text")[2] == EDITED
    assert str(marked(user, "podcast-audio")[0].props["src"]).endswith("?v=2")

    # another user's link: a plain "not found", nothing of it shown
    user.http_client.cookies.clear()
    await signed_in(user, "other@example.com")
    await user.open(f"/generate/podcast?job={job_id}")
    await user.should_see(marker="podcast-not-found", retries=50)
    await user.should_not_see(marker="podcast")
    await user.should_see(marker="no-podcasts")


@SQLITE_ONLY
async def test_the_form_adds_and_removes_speakers_previews_a_voice_and_points_to_resources(
    ui_env: str, user: User
) -> None:
    await signed_in(user, "producer@example.com")
    await user.open("/generate/podcast")
    await user.should_see(marker="speaker-add", retries=50)
    user.find(marker="speaker-add").click()
    user.find(marker="speaker-add").click()
    assert [row.value for row in marked(user, "speaker-name")] == ["Alex", "Sam", "Robin", "Kim"]  # type: ignore[attr-defined]
    (add,) = marked(user, "speaker-add")
    assert not add.enabled  # type: ignore[attr-defined]  # four at most
    user.find(marker="speaker-remove").click()  # the first
    assert [row.value for row in marked(user, "speaker-name")] == ["Sam", "Robin", "Kim"]  # type: ignore[attr-defined]
    assert add.enabled  # type: ignore[attr-defined]

    user.find(marker="speaker-preview").click()
    await eventually(lambda: len(marked(user, "podcast-preview-audio")) == 1, retries=200)
    (preview,) = marked(user, "podcast-preview-audio")
    assert str(preview.props["src"]).startswith("data:audio/mpeg;base64,")

    (source,) = marked(user, "podcast-source")
    source.set_value("resources")  # type: ignore[attr-defined]
    await user.should_see(marker="podcast-no-resources")
    (upload,) = marked(user, "podcast-upload-link")
    assert upload.props["href"] == "/resources"
    user.find(marker="podcast-generate").click()
    await user.should_see("Choose at least one of your resources.")
    await user.should_not_see(marker="podcast-progress")


@SQLITE_ONLY
async def test_a_failed_podcast_says_why_and_a_cancelled_one_says_so(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await signed_in(user, "unlucky@example.com")
    await user.open("/generate/podcast")
    await user.should_see(marker="speaker-add", retries=50)
    user.find(marker="podcast-topic").type("tides")

    upstream.push(*[Step(text=["not json"]) for _ in range(3)])  # the model never writes the outline
    user.find(marker="podcast-generate").click()
    # Up to a minute, like the other jobs on this page: once, under a loaded CI run, this job waited more than
    # 30 s before it started (its progress still "queued"); the cause is not found yet (see the issue note).
    await user.should_see(marker="podcast-error", retries=600)
    assert texts(user, "podcast-error")[0].startswith("The podcast could not be made: ")

    upstream.push(Step(text=["{}"], stall_s=5.0))  # still thinking about the outline when cancelled
    user.find(marker="podcast-generate").click()
    await user.should_see(marker="podcast-cancel", retries=100)
    user.find(marker="podcast-cancel").click()
    await user.should_see(marker="podcast-cancelled", retries=200)
    await eventually(lambda: texts(user, "recent-title") == ["tides", "tides"])
    shown = sorted(badge.text for badge in user.find(ui.badge).elements if badge.text in ("failed", "cancelled"))
    assert shown == ["cancelled", "failed"]
