"""Agent chat: the agent loop, sessions and messages (branches), per-session metrics."""

from services.chat.capability import ChatCapability
from services.chat.service import ChatService

__all__ = ["ChatCapability", "ChatService"]
