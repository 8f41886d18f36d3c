"""Chat as a capability: its service, its run kind, the built-in tools."""

from __future__ import annotations

from services.capabilities import Capability, CapabilityInfo, Core
from services.chat.models import ChatSession
from services.chat.service import ChatService
from services.references import row_describer, row_owner
from services.runs import RunKind
from services.tools import BuiltinTools, ToolProvider


class ChatCapability(Capability):
    name = "chat"

    def __init__(self, core: Core) -> None:
        self._models = core.models
        self.service = ChatService(db=core.db, runs=core.runs, models=core.models, calls=core.calls, tools=core.tools,
                                   settings=core.settings.chat, references=core.references)  # fmt: skip
        # Chats by their title wherever ids are shown to people (the credits statement).
        titles = row_describer(core.db, ChatSession, lambda chat: f"Chat: {chat.title}")
        core.references.register("chs", row_owner(core.db, ChatSession), describe=titles)

    def services(self) -> list[object]:
        return [self.service]

    def info(self) -> CapabilityInfo:
        return CapabilityInfo(enabled=bool(self._models.models()))

    def run_kinds(self) -> list[RunKind]:
        return [self.service.run_kind()]

    def tool_providers(self) -> list[ToolProvider]:
        return [BuiltinTools()]

