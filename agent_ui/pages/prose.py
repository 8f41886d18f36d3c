"""Generate → Prose (the page comes next; the API is POST /generation/prose)."""

from __future__ import annotations

from agent_ui.site import Site

PATH = "/generate/prose"


def register(site: Site) -> None:
    return None
