"""Sandbox tools for the agent: each chat session gets (or creates) its own sandbox and runs code there."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from services.chat.models import ChatSession
from services.chat.tools import Tool, ToolContext, ToolGroup
from services.db.database import Database
from services.errors import NotFoundError
from services.sandbox.schemas import ExecRequest, SandboxCreate
from services.sandbox.service import SandboxService

MAX_TOOL_OUTPUT = 20_000


class SessionSandboxTools:
    def __init__(self, *, db: Database, sandboxes: SandboxService) -> None:
        self._db = db
        self._sandboxes = sandboxes

    async def sandbox_for(self, context: ToolContext) -> str:
        """The session's live sandbox, created on first use and remembered on the session."""
        async with self._db.transaction(readonly=True) as session:
            chat = await session.get(ChatSession, context.session_id)
        if chat is not None and chat.sandbox_id:
            try:
                found = await self._sandboxes.get(context.user_id, chat.sandbox_id)
                if found.status == "running":
                    return found.id
            except NotFoundError:
                pass
        created = await self._sandboxes.create(context.user_id, SandboxCreate(session_id=context.session_id))
        async with self._db.transaction() as session:
            await session.exec(
                sa.update(ChatSession)  # type: ignore[call-overload]
                .where(col(ChatSession.id) == context.session_id, col(ChatSession.user_id) == context.user_id)
                .values(sandbox_id=created.id)
            )
        return created.id

    async def exec(self, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        sandbox_id = await self.sandbox_for(context)
        request = ExecRequest(command=str(arguments.get("command", "")), timeout_s=arguments.get("timeout_s"))
        result = await self._sandboxes.exec(context.user_id, sandbox_id, request)
        return {"sandbox_id": sandbox_id, "exit_code": result.exit_code, "stdout": result.stdout[:MAX_TOOL_OUTPUT],
                "stderr": result.stderr[:MAX_TOOL_OUTPUT], "timed_out": result.timed_out,
                "truncated": result.truncated or len(result.stdout) > MAX_TOOL_OUTPUT}  # fmt: skip

    async def write_file(self, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        sandbox_id = await self.sandbox_for(context)
        content = str(arguments.get("content", "")).encode()
        entry = await self._sandboxes.write(context.user_id, sandbox_id, str(arguments.get("path", "")), content)
        return {"sandbox_id": sandbox_id, "path": arguments.get("path"), "size": entry.size}

    async def read_file(self, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        sandbox_id = await self.sandbox_for(context)
        found = await self._sandboxes.read(context.user_id, sandbox_id, str(arguments.get("path", "")))
        if isinstance(found, bytes):
            return {"path": arguments.get("path"), "content": found[:MAX_TOOL_OUTPUT].decode(errors="replace"),
                    "size": len(found)}  # fmt: skip
        return {"path": arguments.get("path"), "entries": [f"{e.name}{'/' if e.type == 'dir' else ''}" for e in found]}

    def tools(self) -> list[Tool]:
        path = {"type": "string", "description": "path relative to /workspace"}
        return [
            Tool(name="sandbox_exec", group=ToolGroup.SANDBOX, handler=self.exec, timeout_s=120,
                 description="Run a shell command (sh -c) in this chat's sandbox, in /workspace, and get its "
                             "exit_code, stdout and stderr. Python 3 is installed; print what you want to see, "
                             "e.g. python3 -c \"print(2**100)\".",
                 parameters={"type": "object", "properties": {
                     "command": {"type": "string", "description": "the shell command"},
                     "timeout_s": {"type": "number", "description": "time limit in seconds"}},
                     "required": ["command"], "additionalProperties": False}),
            Tool(name="sandbox_write_file", group=ToolGroup.SANDBOX, handler=self.write_file, timeout_s=60,
                 description="Write a text file in this chat's sandbox (parent folders are created).",
                 parameters={"type": "object", "properties": {"path": path, "content": {"type": "string"}},
                             "required": ["path", "content"], "additionalProperties": False}),
            Tool(name="sandbox_read_file", group=ToolGroup.SANDBOX, handler=self.read_file, timeout_s=60,
                 description="Read a text file, or list a folder, in this chat's sandbox.",
                 parameters={"type": "object", "properties": {"path": path}, "required": ["path"],
                             "additionalProperties": False}),
        ]  # fmt: skip
