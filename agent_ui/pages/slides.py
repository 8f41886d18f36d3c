"""Generate → Slides (the page comes next; the API is under /slides)."""

from __future__ import annotations

from agent_ui.site import Site

PATH = "/generate/slides"


def register(site: Site) -> None:
    return None
