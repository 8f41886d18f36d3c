"""The jobs panel on the Generate hub through the NiceGUI `user` fixture: decks made by the deck service from the
scripted model are listed, the one being made first with its progress and Cancel, the finished one with a link to
open it; the list follows a job to its end without a reload, and Cancel cancels it."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from nicegui.testing import User

from agent_ui.components.jobs_panel import ago, meta_text, ordered
from services.auth import Principal
from services.generation import DeckService
from services.generation.schemas import DeckRequest
from services.jobs import JobRead
from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.agent_ui.pages.test_chat_page import app_services, eventually, marked, me, texts
from tests.agent_ui.pages.test_generation_card import deck_steps
from tests.upstream import ScriptedUpstream

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the API's tests run both
EMAIL = "maker@example.com"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def job(job_id: str, status: str, *, minutes_ago: float = 0) -> JobRead:
    created = NOW - timedelta(minutes=minutes_ago)
    return JobRead(id=job_id, kind="ppt", status=status, params={"topic": job_id}, progress=None, fraction=None,
                   result=None, error=None, artifacts=[], created_at=created, started_at=None,
                   finished_at=created if status not in ("queued", "running") else None)  # fmt: skip


def test_jobs_being_made_come_first_then_the_latest_finished() -> None:
    newest_first = [job("a", "done"), job("b", "running"), job("c", "failed"), job("d", "queued"), job("e", "done")]
    assert [j.id for j in ordered(newest_first)] == ["b", "d", "a", "c", "e"]
    assert [j.id for j in ordered(newest_first, finished=1)] == ["b", "d", "a"]


def test_when_reads_as_a_person_says_it() -> None:
    assert ago(NOW - timedelta(seconds=20), NOW) == "just now"
    assert ago(NOW - timedelta(minutes=5, seconds=30), NOW) == "5 min ago"
    assert ago(NOW - timedelta(hours=3), NOW) == "3 h ago"
    assert ago(datetime(2026, 3, 4, tzinfo=UTC), NOW) == "4 Mar 2026"
    assert meta_text(job("x", "running", minutes_ago=2), NOW) == "Slides · started 2 min ago"
    assert meta_text(job("x", "done", minutes_ago=90), NOW) == "Slides · 1 h ago"


async def submitted(owner: Principal, topic: str) -> str:
    deck = await app_services().get(DeckService).submit(owner, DeckRequest(topic=topic, slide_count=6))
    return deck.id


async def ended(owner: Principal, job_id: str) -> JobRead:
    async with asyncio.timeout(120):
        while (found := await app_services().jobs.get(owner, job_id)).status in ("queued", "running"):
            await asyncio.sleep(0.1)
    return found


@SQLITE_ONLY
async def test_the_hub_lists_jobs_follows_one_to_its_end_and_cancels_another(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await register_in_ui(user, EMAIL)
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/generate")
    await user.should_see(marker="jobs-panel", retries=50)
    await user.should_see(marker="no-jobs")
    owner = await me(EMAIL)

    upstream.push(*deck_steps())
    made = await submitted(owner, "lighthouses")
    assert (await ended(owner, made)).status == "done"

    steps = deck_steps()
    steps[3] = dataclasses.replace(steps[3], stall_s=2.0)  # the third slide takes a moment
    upstream.push(*steps)
    followed = await submitted(owner, "tides and moons")
    await user.open("/generate")
    await user.should_see(marker="job-row", retries=50)
    assert texts(user, "job-title") == ["tides and moons", "Lighthouses"]  # the one being made first
    assert texts(user, "job-status")[1] == "Ready"
    (opened,) = marked(user, "job-open")
    assert opened.props["href"] == f"/generate/slides?deck={made}"
    await user.should_see(marker="job-progress")
    await eventually(lambda: any(t.startswith("Writing slide") for t in texts(user, "job-stage")), retries=200)
    assert texts(user, "jobs-summary") == ["1 in progress"]

    # followed to its end without a reload: ready, with its link, and nothing in progress
    await eventually(lambda: texts(user, "job-status") == ["Ready", "Ready"], retries=600)
    assert [str(link.props["href"]) for link in marked(user, "job-open")] == [
        f"/generate/slides?deck={followed}", f"/generate/slides?deck={made}"]  # fmt: skip
    assert marked(user, "job-progress") == [] and texts(user, "jobs-summary") == [""]

    # a third one, cancelled from the list while it plans its slides
    steps = deck_steps()
    steps[0] = dataclasses.replace(steps[0], stall_s=8.0)
    upstream.push(*steps)
    cancelled = await submitted(owner, "harbours")
    await eventually(lambda: "harbours" in texts(user, "job-title"), retries=200)  # started elsewhere: it shows up
    assert texts(user, "job-title")[0] == "harbours"
    (cancel,) = marked(user, "job-cancel")
    assert cancel.props["aria-label"] == "Cancel harbours"
    user.find(marker="job-cancel").click()
    await eventually(lambda: texts(user, "job-status")[0] == "Cancelled", retries=200)
    assert texts(user, "job-error") == ["Cancelled: the deck was not finished."]
    assert (await app_services().jobs.get(owner, cancelled)).status == "cancelled"
    assert texts(user, "job-status") == ["Cancelled", "Ready", "Ready"]


@SQLITE_ONLY
async def test_another_users_jobs_are_not_listed(ui_env: str, user: User, upstream: ScriptedUpstream) -> None:
    await register_in_ui(user, EMAIL)
    await user.should_see(marker="empty-thread", retries=100)
    upstream.push(*deck_steps())
    owner = await me(EMAIL)
    await ended(owner, await submitted(owner, "lighthouses"))
    user.http_client.cookies.clear()
    await register_in_ui(user, "someone-else@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/generate")
    await user.should_see(marker="no-jobs", retries=50)
    assert marked(user, "job-row") == []
