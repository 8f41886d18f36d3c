"""Decks (python-pptx, slide management, LibreOffice thumbnails) and prose (streamed, saved as markdown)."""

from services.generation.capability import GenerationCapability
from services.generation.decks import DeckService
from services.generation.prose import ProseService

__all__ = ["DeckService", "GenerationCapability", "ProseService"]
