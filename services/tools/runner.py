"""Running one tool call: arguments validated by the tool's model, the caller's scope checked again, a time
limit, and the run's stop signal raced so that stopping a run stops its tool at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.auth.scopes import grants
from services.tools.base import Tool, ToolContext

# How long a cancelled tool may take to clean up (kill its command) before the turn moves on.
CANCEL_GRACE_S = 1.5


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool
    output: Any = None
    error: str | None = None
    elapsed_ms: int = 0
    cancelled: bool = False


def _invalid(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        problems.append(f"{where}: {error['msg']}")
    return "invalid arguments: " + "; ".join(problems)


async def run_tool(
    tool: Tool | None, name: str, arguments: str, context: ToolContext, *, stop: asyncio.Event
) -> ToolOutcome:
    """Call ``tool`` (None: the model named a tool it was not offered) with the model's JSON ``arguments``.
    ``stop`` is the run's stop signal: when it is set the call's own ``context.cancel`` is set and the call
    cancelled at once. Failures of any kind come back as an outcome the model can read; the turn goes on."""
    started = time.monotonic()

    def outcome(ok: bool, output: Any = None, error: str | None = None, cancelled: bool = False) -> ToolOutcome:
        output = json.loads(json.dumps(output, default=str))  # events and messages hold JSON only
        return ToolOutcome(ok, output, error, round((time.monotonic() - started) * 1000), cancelled)

    if tool is None:
        return outcome(False, error=f"unknown tool {name!r}: it is not offered in this chat")
    if not grants(context.principal.scopes, tool.scope):
        return outcome(False, error=f"this API key lacks the '{tool.scope}' scope {name} needs")
    try:
        raw = json.loads(arguments or "{}")
        if not isinstance(raw, dict):
            raise ValueError("arguments must be a JSON object")
        parsed = tool.args.model_validate(raw)
    except ValidationError as exc:
        return outcome(False, error=_invalid(exc))
    except ValueError as exc:
        return outcome(False, error=f"invalid arguments: {exc}")
    if stop.is_set():
        return outcome(False, error="stopped before it ran", cancelled=True)

    call = asyncio.ensure_future(tool.handler(parsed, context))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({call, stopped}, timeout=tool.timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not call.done():
        was_stopped = stop.is_set()
        context.cancel.set()  # a tool that watches the signal stops by itself
        call.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait({call}, timeout=CANCEL_GRACE_S)
        if was_stopped:
            return outcome(False, error="stopped", cancelled=True)
        return outcome(False, error=f"timed out after {tool.timeout_s:g} s")
    if call.cancelled():
        return outcome(False, error="stopped", cancelled=True)
    if (error := call.exception()) is not None:
        message = getattr(error, "message", None) or str(error)
        return outcome(False, error=f"{type(error).__name__}: {message}"[:500])
    return outcome(True, output=call.result())
