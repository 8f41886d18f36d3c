"""Decks and prose: the API, the pages under Generate, and the chat's card for generation tools."""

from agent_ui.api.v1 import prose as prose_api
from agent_ui.api.v1 import slides as slides_api
from agent_ui.capabilities import WebCapability
from agent_ui.components.generation_card import generation_card
from agent_ui.pages import prose as prose_pages
from agent_ui.pages import slides as slides_pages
from agent_ui.site import NavItem, Site
from services.generation import GenerationCapability

SLIDES = NavItem(
    "Slides",
    slides_pages.PATH,
    "slideshow",
    order=22,
    parent="/generate",
    description="A PowerPoint deck from a topic, your text or your documents: edit, reorder and rewrite its slides.",
)
PROSE = NavItem(
    "Prose",
    prose_pages.PATH,
    "article",
    order=23,
    parent="/generate",
    description="Articles, summaries, emails and stories, written as you watch and citing your documents.",
)


def register_pages(site: Site) -> None:
    slides_pages.register(site)
    prose_pages.register(site)


CAPABILITY = WebCapability(
    name="generation",
    build=GenerationCapability,
    routers=[slides_api.generation, slides_api.router, prose_api.router],
    pages=register_pages,
    navigation=[SLIDES, PROSE],
    tool_cards={"generation": generation_card},
)
