"""Tool calls written as text, by models that know tools from their chat template but do not return them as
structured calls (the small local models: llama.cpp shows them the tools, they answer `{"name": ..., "arguments":
...}`, bare, in a code fence or in `<tool_call>` tags).

An answer that starts like a call is held back rather than streamed: if it is a call of a tool on offer it runs;
if not, the model is asked again without tools, so no call notation ever reaches the user.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from services.llm.schemas import ToolCallRequest
from services.tools import Tool

# Enough of the answer's start to tell a call from prose ("```python" is prose, "```json" is not).
DECIDE_AFTER_CHARS = 16
_FENCE = re.compile(r"```[a-zA-Z]*\s*")
_TAGS = re.compile(r"</?tool(?:_call|s|_response)>")


@dataclass
class CallGate:
    """Sits between a streamed answer and the user: passes prose through, holds what may be a call."""

    echoes: tuple[str, ...] = ()
    held: bool = False
    decided: bool = False
    buffer: list[str] = field(default_factory=list)

    def feed(self, text: str) -> str:
        """What of ``text`` may be shown now."""
        if self.decided:
            if self.held:
                self.buffer.append(text)
                return ""
            return text
        self.buffer.append(text)
        start = "".join(self.buffer).lstrip()
        if len(start) < DECIDE_AFTER_CHARS:
            return ""
        return self._decide(start)

    def end(self) -> str:
        """The call ended: what is still to show (nothing when the answer was held as a call)."""
        if self.decided:
            return ""
        start = "".join(self.buffer).lstrip()
        return self._decide(start) if start else ""

    @property
    def text(self) -> str:
        return "".join(self.buffer)

    def _decide(self, start: str) -> str:
        self.decided = True
        self.held = looks_like_call(start, self.echoes)
        if self.held:
            return ""
        shown, self.buffer = "".join(self.buffer), []
        return shown


def looks_like_call(start: str, echoes: tuple[str, ...] = ()) -> bool:
    """An answer's start that may be a call: JSON, a template tag (``<tool_call>``, ``<tools>``,
    ``<tool_response>``), a code fence opening on JSON, or the start of a note the model was shown (``echoes``)."""
    if start.startswith(("{", "<tool", "[{", *echoes)):
        return True
    if start.startswith("```"):
        language = start[3:].split("\n", 1)[0].strip().lower()
        rest = start[3 + len(language) :].lstrip()
        return language == "json" or rest.startswith("{")
    return False


def parse_calls(text: str, tools: list[Tool], *, id_prefix: str) -> list[ToolCallRequest]:
    """The calls of offered tools in ``text``; arguments reduced to those the tool declares (small models copy
    schema keywords such as ``type`` into them)."""
    by_name = {tool.name: tool for tool in tools}
    cleaned = _TAGS.sub("\n", _FENCE.sub("\n", text)).replace("```", "\n")
    calls: list[ToolCallRequest] = []
    for found in _json_objects(cleaned):
        for candidate in found if isinstance(found, list) else [found]:
            if not isinstance(candidate, dict):
                continue
            nested = candidate.get("function")
            function: dict[str, Any] = nested if isinstance(nested, dict) else candidate
            name = function.get("name") or function.get("tool")
            tool = by_name.get(name) if isinstance(name, str) else None
            if tool is None:
                continue
            arguments = function.get("arguments", function.get("parameters", {}))
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except ValueError:
                    arguments = {}
            declared = tool.parameters.get("properties", {})
            kept = {k: v for k, v in arguments.items() if k in declared} if isinstance(arguments, dict) else {}
            calls.append(ToolCallRequest(call_id=f"{id_prefix}_{len(calls)}", name=tool.name,
                                         arguments=json.dumps(kept)))  # fmt: skip
    return calls


def _json_objects(text: str) -> list[Any]:
    """Every top-level JSON object or array in ``text``, in order."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    position = 0
    while True:
        starts = [i for i in (text.find("{", position), text.find("[", position)) if i >= 0]
        if not starts:
            return found
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        found.append(value)
        position = end


def without_tags(text: str) -> str:
    """A held answer shown as it is (nothing better came): at least without the template's tags."""
    return _TAGS.sub("", text).strip()
