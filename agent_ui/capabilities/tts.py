"""Text to speech: voices and synthesis over the API, and podcasts (the API and a page under Generate)."""

from agent_ui.api.v1 import podcasts as podcasts_api
from agent_ui.api.v1 import tts as tts_api
from agent_ui.capabilities import WebCapability
from agent_ui.pages import podcast as podcast_pages
from agent_ui.site import NavItem
from services.tts import TtsCapability

PODCAST = NavItem(
    "Podcast",
    podcast_pages.PATH,
    "podcasts",
    order=21,
    parent="/generate",
    description="Two or more voices talk through a topic, your text or your documents, with a transcript.",
)

CAPABILITY = WebCapability(
    name="tts",
    build=TtsCapability,
    routers=[tts_api.router, podcasts_api.router],
    pages=podcast_pages.register,
    navigation=[PODCAST],
)
