"""Text to speech: engines (edge-tts online, espeak-ng and flite offline) behind one voice model."""

from services.tts.capability import TtsCapability
from services.tts.podcast import PodcastService
from services.tts.service import TtsService

__all__ = ["PodcastService", "TtsCapability", "TtsService"]
