"""Sandbox tools for the agent: each chat session gets (or creates) its own sandbox and runs code there.

Offered to callers with the ``sandboxes`` scope only. A stopped run cancels the tool, which closes the command's
output stream, which kills the command (on both backends).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.errors import ValidationFailedError
from services.sandbox.schemas import MAX_PATH_BYTES, ExecRequest, SandboxCreate, WorkspacePath, no_nul
from services.sandbox.service import SandboxService
from services.tools import Tool, ToolContext, ToolGroup

SANDBOX = ToolGroup("sandbox", Scope.SANDBOXES, "run commands and keep files in the chat's own sandbox")
MAX_TOOL_OUTPUT = 20_000
Path = Field(min_length=1, max_length=MAX_PATH_BYTES, description="path relative to /workspace")


class ExecArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: Annotated[str, AfterValidator(no_nul)] = Field(
        min_length=1, max_length=100_000, description="the shell command"
    )
    timeout_s: float | None = Field(default=None, gt=0, le=3600, description="time limit in seconds")


class WriteArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: WorkspacePath = Path
    content: str = Field(max_length=5_000_000)


class ReadArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: WorkspacePath = Path


def describe_exec(arguments: dict[str, Any], output: dict[str, Any]) -> str:
    """The command, its exit code and output, as a model reads it back."""
    lines = [f"The command `{arguments.get('command', '')}` exited with code {output['exit_code']}"
             + (" (timed out)" if output.get("timed_out") else "") + "."]  # fmt: skip
    for stream in ("stdout", "stderr"):
        if text := str(output.get(stream) or "").strip():
            lines.append(f"{stream}:\n```\n{text[:3000]}\n```")
    if len(lines) == 1:
        lines.append("It printed nothing.")
    return "\n".join(lines)


def describe_read(_arguments: dict[str, Any], output: dict[str, Any]) -> str:
    if "entries" in output:
        return f"{output['path']} holds: " + (", ".join(output["entries"]) or "nothing")
    return f"{output['path']}:\n```\n{str(output.get('content', ''))[:3000]}\n```"


class SessionSandboxTools:
    def __init__(self, *, sandboxes: SandboxService) -> None:
        self._sandboxes = sandboxes
        self._tools = [
            Tool(name="sandbox_exec", group=SANDBOX, args=ExecArgs, handler=self.exec, timeout_s=120,
                 description="Run a shell command (sh -c) in this chat's own sandbox, in /workspace, and get its "
                             "exit code and what it printed (only printed output comes back: print results). "
                             "Python 3 is installed as python3. Use it when the user asks to run code or a command.",
                 describe=describe_exec),
            Tool(name="sandbox_write_file", group=SANDBOX, args=WriteArgs, handler=self.write_file, timeout_s=60,
                 description="Write a text file in this chat's sandbox (parent folders are created).",
                 describe=lambda _args, out: f"Wrote {out['path']} ({out['size']} bytes) in the sandbox."),
            Tool(name="sandbox_read_file", group=SANDBOX, args=ReadArgs, handler=self.read_file, timeout_s=60,
                 description="Read a text file, or list a folder, in this chat's sandbox.",
                 describe=describe_read),
        ]  # fmt: skip

    def groups(self) -> list[ToolGroup]:
        return [SANDBOX]

    async def tools_for(self, principal: Principal) -> list[Tool]:
        return list(self._tools)

    async def sandbox_for(self, context: ToolContext) -> str:
        """The sandbox a key is bound to (the one a provisioned sandbox's tools use), else the chat session's
        live sandbox (a job's: its run's), created on first use."""
        if context.principal.sandbox_id is not None:
            return context.principal.sandbox_id
        owner = context.session_id or context.run_id
        if not owner:
            raise ValidationFailedError("sandbox tools outside a chat or job need a key bound to a sandbox",
                                        code="sandbox_required")  # fmt: skip
        found = await self._sandboxes.of_session(context.user_id, owner)
        if found is not None and found.status == "running":
            return found.id
        created = await self._sandboxes.create(context.user_id, SandboxCreate(session_id=owner))
        return created.id

    async def exec(self, arguments: ExecArgs, context: ToolContext) -> dict[str, Any]:
        sandbox_id = await self.sandbox_for(context)
        request = ExecRequest(command=arguments.command, timeout_s=arguments.timeout_s)
        result = await self._sandboxes.exec(context.user_id, sandbox_id, request)
        return {"sandbox_id": sandbox_id, "exit_code": result.exit_code, "stdout": result.stdout[:MAX_TOOL_OUTPUT],
                "stderr": result.stderr[:MAX_TOOL_OUTPUT], "timed_out": result.timed_out,
                "truncated": result.truncated or len(result.stdout) > MAX_TOOL_OUTPUT}  # fmt: skip

    async def write_file(self, arguments: WriteArgs, context: ToolContext) -> dict[str, Any]:
        sandbox_id = await self.sandbox_for(context)
        entry = await self._sandboxes.write(context.user_id, sandbox_id, arguments.path, arguments.content.encode())
        return {"sandbox_id": sandbox_id, "path": arguments.path, "size": entry.size}

    async def read_file(self, arguments: ReadArgs, context: ToolContext) -> dict[str, Any]:
        sandbox_id = await self.sandbox_for(context)
        found = await self._sandboxes.read(context.user_id, sandbox_id, arguments.path)
        if isinstance(found, bytes):
            return {"path": arguments.path, "content": found[:MAX_TOOL_OUTPUT].decode(errors="replace"),
                    "size": len(found)}  # fmt: skip
        return {"path": arguments.path, "entries": [f"{e.name}{'/' if e.type == 'dir' else ''}" for e in found]}
