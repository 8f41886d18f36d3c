"""Which branch of a conversation the chat shows.

Messages form a tree through ``parent_id``: regenerating adds an answer beside the others to the same question,
editing adds a question beside the others after the same answer. The page shows one path from the root to a leaf
and lets the reader step between siblings ("‹ 1/2 ›"); stepping shows the newest leaf below the chosen sibling.
"""

from __future__ import annotations

from services.chat.history import branch
from services.chat.schemas import MessageRead


class Conversation:
    def __init__(self, messages: list[MessageRead]) -> None:
        self.messages = sorted(messages, key=lambda m: (m.created_at, m.id))
        self.by_id = {m.id: m for m in self.messages}
        self.children: dict[str | None, list[MessageRead]] = {}
        for message in self.messages:
            self.children.setdefault(message.parent_id, []).append(message)

    @property
    def newest(self) -> str | None:
        return self.messages[-1].id if self.messages else None

    def path(self, leaf_id: str | None) -> list[MessageRead]:
        """Root to ``leaf_id`` (empty for an unknown leaf)."""
        return branch(self.messages, leaf_id)

    def siblings(self, message: MessageRead) -> list[MessageRead]:
        """The message and the other versions of it (same parent, same role), oldest first."""
        return [m for m in self.children.get(message.parent_id, []) if m.role == message.role]

    def newest_leaf(self, message_id: str) -> str:
        """The newest message below ``message_id`` (itself when it has none): replies are always newer than what
        they answer, so it is a leaf, the end of the most recent conversation through that message."""
        newest = self.by_id[message_id]
        stack = [message_id]
        while stack:
            for child in self.children.get(stack.pop(), []):
                if (child.created_at, child.id) > (newest.created_at, newest.id):
                    newest = child
                stack.append(child.id)
        return newest.id
