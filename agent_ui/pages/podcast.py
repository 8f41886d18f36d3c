"""A podcast at /generate/podcast: the form, the job's progress, then the player and the transcript. The podcast
being shown is in the URL (``?job=<id>``), so a reload shows it again, or its progress while it is made."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from agent_ui.components.layout import frame
from agent_ui.components.podcast import (
    PodcastForm,
    PodcastView,
    RecentPodcasts,
    add_podcast_assets,
    disabled_notice,
    podcast_grid,
)
from agent_ui.components.resources import PassagePanel
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import Site
from services.jobs import JobRead
from services.rag.service import RagService
from services.tts import PodcastService, TtsService

PATH = "/generate/podcast"


def register(site: Site) -> None:
    services = site.services

    @ui.page(PATH, title="Podcast · agent-ui")
    async def podcast_page(request: Request, job: str | None = None) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        with frame(site, principal, title="Podcast", active=PATH, on_sign_out=sign_out_handler(request, services)):
            podcasts, tts = services.find(PodcastService), services.find(TtsService)
            if podcasts is None or tts is None:
                disabled_notice()
                return None
            add_podcast_assets()
            rag = services.find(RagService)
            passages = PassagePanel(rag, principal) if rag is not None else None

            async def submitted(started: JobRead) -> None:
                ui.navigate.history.replace(f"{PATH}?job={started.id}")
                recent.current = started.id
                await view.show(started.id)
                view.reveal()
                await recent.refresh()

            with podcast_grid():
                view = PodcastView(podcasts=podcasts, jobs=services.jobs, principal=principal, passages=passages,
                                   on_ended=lambda: recent.refresh())  # fmt: skip
                form = PodcastForm(podcasts=podcasts, tts=tts, rag=rag, principal=principal, on_submitted=submitted)
                recent = RecentPodcasts(services.jobs, principal, job)
            await form.build()
            await recent.refresh()
            await view.show(job)
        return None
