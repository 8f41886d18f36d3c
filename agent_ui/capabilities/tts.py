"""Text to speech: voices and synthesis over the API, and podcasts (generation jobs) over the API."""

from agent_ui.api.v1 import podcasts as podcasts_api
from agent_ui.api.v1 import tts as tts_api
from agent_ui.capabilities import WebCapability
from services.tts import TtsCapability

CAPABILITY = WebCapability(name="tts", build=TtsCapability, routers=[tts_api.router, podcasts_api.router])
