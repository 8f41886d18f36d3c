"""Tools: declared from argument models, offered per caller's scopes, validated, timed, stopped."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import BaseModel, ConfigDict, Field

from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.errors import PermissionDeniedError, ValidationFailedError
from services.tools import BuiltinTools, Tool, ToolCatalog, ToolContext, ToolGroup, run_tool
from tests.factories import principal

SLOW = ToolGroup("slow", Scope.SANDBOXES, "waits")


class WaitArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(gt=0, le=60, description="how long")
    title: str | None = None


class SlowTools:
    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.tool = Tool(name="wait", description="Wait.", args=WaitArgs, group=SLOW, handler=self.wait, timeout_s=5)

    async def wait(self, arguments: WaitArgs, context: ToolContext) -> dict[str, float]:
        try:
            await asyncio.sleep(arguments.seconds)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return {"waited": arguments.seconds}

    def groups(self) -> list[ToolGroup]:
        return [SLOW]

    async def tools_for(self, principal: Principal) -> list[Tool]:
        return [self.tool]


def catalog() -> tuple[ToolCatalog, SlowTools]:
    tools, slow = ToolCatalog(), SlowTools()
    tools.add(BuiltinTools())
    tools.add(slow)
    return tools, slow


def context(who: Principal) -> ToolContext:
    return ToolContext(principal=who, run_id="run_x", session_id="chs_x")


def test_names_follow_what_model_apis_accept_and_the_schema_comes_from_the_model() -> None:
    _, slow = catalog()
    with pytest.raises(ValueError):
        Tool(name="bad name!", description="", args=WaitArgs, group=SLOW, handler=slow.wait)
    schema = slow.tool.openai_schema()["function"]
    assert schema["name"] == "wait" and slow.tool.source == "slow"
    assert schema["parameters"] == {
        "type": "object", "additionalProperties": False, "required": ["seconds"],
        "properties": {"seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "description": "how long"},
                       "title": {"type": "string"}},
    }  # fmt: skip


async def test_a_caller_gets_only_the_groups_its_scopes_allow() -> None:
    tools, _ = catalog()
    everyone, chat_only = principal("usr_a"), principal("usr_a", scopes=["chat"])
    assert {t.name for t in await tools.tools_for(everyone)} == {"current_datetime", "calculator", "wait"}
    assert {t.name for t in await tools.tools_for(chat_only)} == {"current_datetime", "calculator"}
    assert tools.resolve_groups(chat_only, None) == {"builtin"}
    with pytest.raises(PermissionDeniedError) as denied:
        tools.resolve_groups(chat_only, ["slow"])
    assert denied.value.code == "insufficient_scope"
    with pytest.raises(ValidationFailedError) as unknown:
        tools.resolve_groups(everyone, ["nope"])
    assert unknown.value.code == "unknown_tool_group"
    assert await tools.tools_for(chat_only, {"slow"}) == []  # asked for directly, still not offered


async def test_invalid_arguments_and_a_missing_scope_are_tool_errors_not_calls() -> None:
    _, slow = catalog()
    never = asyncio.Event()
    bad = await run_tool(slow.tool, "wait", '{"seconds": -1, "extra": 1}', context(principal("u")), stop=never)
    assert not bad.ok and bad.error is not None
    assert "seconds" in bad.error and "extra" in bad.error and bad.error.startswith("invalid arguments")
    not_json = await run_tool(slow.tool, "wait", "{seconds", context(principal("u")), stop=never)
    assert not not_json.ok and "invalid arguments" in (not_json.error or "")
    denied = await run_tool(slow.tool, "wait", '{"seconds": 0.01}', context(principal("u", scopes=["chat"])),
                            stop=never)  # fmt: skip
    assert not denied.ok and "sandboxes" in (denied.error or "")
    unknown = await run_tool(None, "sandbox_exec", "{}", context(principal("u")), stop=never)
    assert not unknown.ok and "not offered" in (unknown.error or "")
    done = await run_tool(slow.tool, "wait", '{"seconds": 0.01}', context(principal("u")), stop=never)
    assert done.ok and done.output == {"waited": 0.01}


async def test_stopping_the_run_cancels_the_tool_at_once() -> None:
    _, slow = catalog()
    stop = asyncio.Event()
    call_context = context(principal("u"))
    asyncio.get_running_loop().call_later(0.1, stop.set)
    started = time.monotonic()
    outcome = await run_tool(slow.tool, "wait", '{"seconds": 30}', call_context, stop=stop)
    assert time.monotonic() - started < 2
    assert not outcome.ok and outcome.cancelled and outcome.error == "stopped"
    assert slow.cancelled.is_set() and call_context.cancel.is_set()


async def test_a_tool_past_its_time_limit_is_cancelled_and_the_run_goes_on() -> None:
    _, slow = catalog()
    quick = Tool(name="wait", description="", args=WaitArgs, group=SLOW, handler=slow.wait, timeout_s=0.1)
    stop = asyncio.Event()
    outcome = await run_tool(quick, "wait", '{"seconds": 30}', context(principal("u")), stop=stop)
    assert not outcome.ok and not outcome.cancelled and outcome.error == "timed out after 0.1 s"
    assert slow.cancelled.is_set() and not stop.is_set()
