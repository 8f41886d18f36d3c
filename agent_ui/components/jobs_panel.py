"""The user's generation jobs on the Generate hub: the ones being made first (with their progress and Cancel), then
the latest finished ones with a link to what they made; read again every second while a job is being made, and
every few seconds otherwise (a job started from the chat or another tab shows up)."""

from __future__ import annotations

import logging
from datetime import datetime

from nicegui import ui

from agent_ui.components.a11y import named
from agent_ui.components.generation_card import (
    ACTIVE,
    FAMILY,
    KINDS,
    STATUS,
    add_card_css,
    ended_text,
    job_progress,
    job_title,
    open_url,
)
from services.auth import Principal
from services.clock import Clock, utcnow
from services.errors import ConflictError, DomainError
from services.jobs import JobRead, JobService

log = logging.getLogger(__name__)

POLL_S = 1.0  # while a job is being made
IDLE_POLL_S = 5.0  # otherwise: a job started from the chat or another tab shows up
FETCHED = 50  # the newest jobs looked at; the ones running are always among them (a user may queue only a few)
FINISHED_SHOWN = 10
CSS = """
.jobs-list { display: flex; flex-direction: column; width: 100%; }
.jobs-row { display: flex; align-items: center; gap: 12px; padding: 10px 4px; min-width: 0;
  border-top: 1px solid rgba(0, 0, 0, 0.08); }
.jobs-row:first-child { border-top: none; }
.body--dark .jobs-row { border-top-color: rgba(255, 255, 255, 0.1); }
.jobs-row .gen-card-icon { width: 36px; height: 36px; align-self: flex-start; }
.jobs-main { flex: 1; min-width: 0; display: flex; flex-direction: column; gap: 2px; }
.jobs-title { font-weight: 500; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.jobs-meta { font-size: 0.8125rem; opacity: 0.75; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.jobs-error { font-size: 0.8125rem; overflow-wrap: anywhere; }
.jobs-side { display: flex; align-items: center; gap: 4px; flex: none; }
@media (max-width: 599px) {
  .jobs-row { flex-wrap: wrap; }
  .jobs-main { flex-basis: calc(100% - 48px); }
  .jobs-side { width: 100%; justify-content: flex-end; }
}
"""


def ago(when: datetime, now: datetime) -> str:
    """``just now``, ``5 min ago``, ``3 h ago``, then the date."""
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{when:%-d %b %Y}"


def ordered(jobs: list[JobRead], finished: int = FINISHED_SHOWN) -> list[JobRead]:
    """The jobs being made (newest first), then the latest ``finished`` ones."""
    running = [job for job in jobs if job.status in ACTIVE]
    ended = [job for job in jobs if job.status not in ACTIVE]
    return running + ended[:finished]


def meta_text(job: JobRead, now: datetime) -> str:
    kind = KINDS.get(job.kind)
    label = kind.label if kind is not None else job.kind
    if job.status in ACTIVE:
        return f"{label} · started {ago(job.created_at, now)}"
    return f"{label} · {ago(job.finished_at or job.created_at, now)}"


class JobRow:
    """One job: kind, title, when, status; its bar and Cancel while it is made, a link to what it made once done."""

    def __init__(self, panel: JobsPanel, job: JobRead, now: datetime) -> None:
        self._panel = panel
        self.job_id = job.id
        kind = KINDS.get(job.kind, KINDS["ppt"])
        self._bar: ui.linear_progress | None = None
        self._stage: ui.label | None = None
        with ui.element("div").classes("jobs-row").mark("job-row", f"job-{job.id}") as self.row:
            with ui.element("div").classes(f"gen-card-icon gen-card-icon--{kind.key}"):
                ui.icon(kind.icon, size="20px").props('aria-hidden="true"')
            with ui.element("div").classes("jobs-main"):
                ui.label(job_title(job)).classes("jobs-title").mark("job-title")
                self.meta = ui.label(meta_text(job, now)).classes("jobs-meta").mark("job-meta")
                if job.status in ACTIVE:
                    self._bar = ui.linear_progress(0, show_value=False, size="6px").props("rounded")
                    named(self._bar, f"Progress of {job_title(job)}").mark("job-progress")
                    self._stage = ui.label("").classes("jobs-meta").mark("job-stage")
                elif job.status != "done":
                    reason = job.error.message if job.error is not None else None
                    ui.label(ended_text(kind, job.status, reason)).classes(
                        "jobs-error " + ("text-grey-8" if job.status == "cancelled" else "text-negative")
                    ).mark("job-error")
            with ui.element("div").classes("jobs-side"):
                text, color = STATUS.get(job.status, (job.status.capitalize(), "grey-7"))
                ui.badge(text, color=color).props("rounded").mark("job-status")
                if job.status in ACTIVE:
                    cancel = ui.button("Cancel", icon="close", on_click=self.cancel).props(
                        "flat dense no-caps color=grey-8"
                    )
                    named(cancel, f"Cancel {job_title(job)}").mark("job-cancel")
                elif job.status == "done":
                    link = ui.button("Open", icon="open_in_new").props("flat dense no-caps color=primary")
                    link.props["href"] = open_url(job.kind, job.id)
                    named(link, f"Open {job_title(job)}").mark("job-open")
        self.update(job, now)

    def update(self, job: JobRead, now: datetime) -> None:
        self.meta.set_text(meta_text(job, now))
        if self._bar is None or self._stage is None:
            return
        fraction, stage, count = job_progress(job)
        if fraction is None:
            self._bar.props("indeterminate")
        else:
            self._bar.props(remove="indeterminate")
            self._bar.set_value(fraction)
        self._stage.set_text(f"{stage} · {count}" if count else stage)

    async def cancel(self) -> None:
        await self._panel.cancel(self.job_id)


class JobsPanel:
    """The list (see the module's docstring); ``refresh`` reads it again."""

    def __init__(self, jobs: JobService, principal: Principal, *, clock: Clock = utcnow) -> None:
        self._jobs = jobs
        self._principal = principal
        self._clock = clock
        self._shown: list[tuple[str, str]] | None = None  # (id, status) of the rows on screen, in order
        self._rows: dict[str, JobRow] = {}
        self._busy = False
        add_card_css()
        ui.add_css(CSS)
        with ui.card().classes("w-full gap-2").mark("jobs-panel") as self.card:
            with ui.row().classes("items-center w-full no-wrap gap-2"):
                ui.label("Your jobs").classes("text-lg font-medium grow").props('role="heading" aria-level="2"')
                self.summary = ui.label("").classes("text-sm text-grey-7").mark("jobs-summary")
            self.body = ui.element("div").classes("jobs-list").mark("jobs-list")
            self.timer = ui.timer(POLL_S, self.refresh, active=False, immediate=False)

    async def refresh(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            page = await self._jobs.list_jobs(self._principal, family=FAMILY, limit=FETCHED, cursor=None)
        except DomainError as exc:
            self.timer.deactivate()
            self._redraw([], message=f"Your jobs cannot be listed: {exc.message}")
            return
        finally:
            self._busy = False
        jobs = ordered(page.items)
        now = self._clock()
        shown = [(job.id, job.status) for job in jobs]
        if shown != self._shown:
            self._redraw(jobs)
        else:
            for job in jobs:
                self._rows[job.id].update(job, now)
        running = sum(job.status in ACTIVE for job in jobs)
        self.summary.set_text(f"{running} in progress" if running else "")
        self.timer.interval = POLL_S if running else IDLE_POLL_S
        self.timer.activate()

    def _redraw(self, jobs: list[JobRead], *, message: str | None = None) -> None:
        self.body.clear()
        self._rows = {}
        self._shown = [(job.id, job.status) for job in jobs]
        now = self._clock()
        with self.body:
            if message is not None:
                ui.label(message).classes("text-negative").mark("jobs-problem")
            elif not jobs:
                ui.label("No jobs yet. Decks and podcasts you make here or in the chat are listed here while they "
                         "are made, then with a link to open them.").classes("text-grey-7").mark("no-jobs")  # fmt: skip
            for job in jobs:
                self._rows[job.id] = JobRow(self, job, now)

    async def cancel(self, job_id: str) -> None:
        try:
            await self._jobs.cancel(self._principal, job_id, family=FAMILY)
        except ConflictError:
            pass  # it ended meanwhile: the refresh shows how
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
        await self.refresh()
