"""Resources (RAG) at /resources: add files, web pages and text, follow their ingestion, search them."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from agent_ui.components.layout import frame
from agent_ui.components.resources import (
    AddResources,
    PassagePanel,
    ResourceList,
    ResourceSearch,
    disabled_notice,
    resources_grid,
)
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import Site
from services.rag import RagService


def register(site: Site) -> None:
    services = site.services

    @ui.page("/resources", title="Resources · agent-ui")
    async def resources_page(request: Request) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        with frame(site, principal, title="Resources", active="/resources",
                   on_sign_out=sign_out_handler(request, services)):  # fmt: skip
            rag = services.find(RagService)
            if rag is None:
                disabled_notice()
                return None
            passages = PassagePanel(rag, principal)
            with resources_grid():
                AddResources(rag, principal, max_upload_bytes=services.settings.rag.max_upload_bytes,
                             on_added=lambda: resources.refresh())  # fmt: skip
                ResourceSearch(rag, principal, passages)
                resources = ResourceList(rag, services.jobs, principal)
            await resources.refresh()
        return None
