"""What an API key may do. Browser sessions and login tokens hold every scope of their user."""

from enum import StrEnum


class Scope(StrEnum):
    ALL = "*"
    CHAT = "chat"
    GENERATION = "generation"
    SANDBOXES = "sandboxes"
    MCP = "mcp"
    RAG = "rag"
    TTS = "tts"
    CREDITS = "credits"
    CONFIG = "config"
    API_KEYS = "api_keys"
    ADMIN = "admin"


def grants(held: list[str], needed: Scope) -> bool:
    return Scope.ALL in held or needed in held
