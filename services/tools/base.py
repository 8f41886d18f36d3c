"""Tools the agent can call: declared from a Pydantic argument model, grouped, each group behind a scope.

Tools come from providers asked per caller (``tools_for(principal)``): built-ins, the session's sandbox,
and later RAG, the user's MCP servers and generation. A group is an open set: a provider registers the
groups it offers with the API-key scope each needs.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from pydantic import BaseModel

from services.auth.schemas import Principal
from services.auth.scopes import Scope

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
GROUP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class ToolGroup:
    """A named set of tools a turn can ask for (``tools: ["sandbox"]``), allowed by one API-key scope."""

    name: str
    scope: Scope
    description: str = ""

    def __post_init__(self) -> None:
        if not GROUP_NAME.match(self.name):
            raise ValueError(f"tool group {self.name!r} does not match {GROUP_NAME.pattern}")


# Tools that make files in a background job (decks, podcasts, prose), offered by the capabilities that make them: each
# starts its work and answers at once with the job's id; the chat's card follows the job.
GENERATION = ToolGroup("generation", Scope.GENERATION, "make decks, podcasts and written texts as files")


@dataclass(frozen=True)
class Citation:
    """A source a tool found (a resource's chunk, later a web page): what a ``citation`` event carries, plus the
    passage's whole text, which the turn keeps to tell which source an uncited answer drew on."""

    key: str  # one source, one number: e.g. the chunk id
    data: dict[str, Any]  # the event's fields but ``n`` (docs/events.md)
    text: str = ""


@dataclass
class ToolContext:
    """What a tool may know and use while it runs: who asked, in which run (and chat session), a cancel
    signal set the moment the run is stopped, and the run's event stream."""

    principal: Principal
    run_id: str
    session_id: str | None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    emit: Callable[[str, dict[str, Any]], object] = lambda _type, _data: None
    # Number a source this call found, for the answer to cite as [n]: the turn keeps the numbers (one per
    # source, the same number for the same source again), sends a ``citation`` event and stores it with the
    # answer. Outside a turn nothing is numbered (0).
    cite: Callable[[Citation], int] = lambda _citation: 0

    @property
    def user_id(self) -> str:
        return self.principal.user.id


Handler = Callable[[Any, ToolContext], Awaitable[Any]]
# A result as one short sentence a model reads back (``(arguments, output) -> text``): what a routed model gets
# instead of JSON, and what history keeps of the call.
Describer = Callable[[dict[str, Any], Any], str]
MAX_SUMMARY_CHARS = 4000


def _plain(schema: Any) -> Any:
    """Pydantic's schema without generated titles and with ``X | None = None`` read as an optional ``X``:
    shorter prompts (small local models read them), the same contract."""
    if isinstance(schema, list):
        return [_plain(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    options = schema.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options and "default" in schema \
            and schema["default"] is None:
        schema = {**next(o for o in options if o != {"type": "null"}),
                  **{k: v for k, v in schema.items() if k not in ("anyOf", "default")}}  # fmt: skip
    plain = {key: _plain(value) for key, value in schema.items() if key not in ("title", "properties", "$defs")}
    for mapping in ("properties", "$defs"):  # their keys are names, which may well be "title"
        if isinstance(schema.get(mapping), dict):
            plain[mapping] = {name: _plain(value) for name, value in schema[mapping].items()}
    return plain


@dataclass(frozen=True)
class Tool:
    """One tool. ``args`` is its argument model: the JSON schema the model sees and the validation of what it
    sends both come from it (arguments that fail become a tool error the model can read and correct)."""

    name: str
    description: str
    args: type[BaseModel]
    group: ToolGroup
    handler: Handler
    source: str = ""
    timeout_s: float = 30.0
    describe: Describer | None = None
    # Its result is material to answer from (passages of documents), not an answer: a model without native tool
    # calls reads it before the question instead of in a note of results after it.
    reads_as_context: bool = False
    # A schema given as JSON (an MCP server's tool) instead of derived from ``args``; ``args`` then takes any
    # object and the handler checks it against this schema.
    input_schema: dict[str, Any] | None = None
    # The object the tool acts on (an MCP server's id), so a turn can offer the tools of some of them only.
    subject: str | None = None
    # The arguments when a user's message plainly asks for this tool ("make a deck about tides"), else None: a
    # model without native tool calls is not trusted to decide (a small one writes the slides itself), so the turn
    # calls the tool first and the model answers from its result.
    intent: Callable[[str], dict[str, Any] | None] | None = None
    # Its result's sentence (``describe``) is the whole answer when the turn called it on a plain request for a
    # model without native tool calls: "I started a deck…" is all there is to say, and a small model asked to say it
    # writes the slides itself or repeats its instructions.
    speaks_for_itself: bool = False

    def __post_init__(self) -> None:
        if not TOOL_NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} does not match {TOOL_NAME.pattern}")
        if not self.source:
            object.__setattr__(self, "source", self.group.name)

    @property
    def scope(self) -> Scope:
        return self.group.scope

    @cached_property
    def parameters(self) -> dict[str, Any]:
        if self.input_schema is not None:
            return {"type": "object", "properties": {}, **self.input_schema}
        schema = _plain(self.args.model_json_schema())
        schema.setdefault("properties", {})
        return schema

    def summary(self, arguments: str, ok: bool, output: Any, error: str | None) -> str:
        """The result as a sentence: the tool's own wording when it has one, else its JSON."""
        if not ok:
            return failure_summary(self.name, error)
        if self.describe is not None:
            try:
                parsed = json.loads(arguments) if arguments.strip() else {}
                text = self.describe(parsed if isinstance(parsed, dict) else {}, output)
            except (ValueError, KeyError, TypeError, AttributeError):
                text = ""
            if text:
                return clip(text, MAX_SUMMARY_CHARS)
        return clip(f"{self.name} returned {json.dumps(output, default=str)}", MAX_SUMMARY_CHARS)

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolProvider(Protocol):
    """A source of tools. ``groups`` is what it may offer; ``tools_for`` what it offers this caller now
    (the catalog drops any tool whose group the caller's scopes do not allow)."""

    def groups(self) -> list[ToolGroup]: ...

    async def tools_for(self, principal: Principal) -> list[Tool]: ...


def failure_summary(name: str, error: str | None) -> str:
    """A failed call as one sentence, whatever failed: the tool, its arguments, or the call itself."""
    return f"{name} failed: {error}"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…[truncated]"


class NoArguments(BaseModel):
    model_config = {"extra": "forbid"}


class AnyArguments(BaseModel):
    """Whatever object the model sends: for tools whose ``input_schema`` is checked by their handler."""

    model_config = {"extra": "allow"}
