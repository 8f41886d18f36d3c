"""Generation tools for chat: the agent starts a deck or a text and answers at once with what it started; the chat
shows a card that follows the work (a job, or prose's run) to its file. Stopping the turn leaves the work going."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.auth.schemas import Principal
from services.generation.decks import DeckService
from services.generation.prose import ProseService
from services.generation.schemas import DeckRequest, ProseLength, ProseRequest, ProseStyle, ThemeName
from services.tools import GENERATION, Tool, ToolContext, ToolGroup
from services.tools.intents import asked_to_make, mentions, number_before

DECKS = r"slides?|slide\s*deck|slide\s*show|deck|presentation|power\s*point|pptx"
THEME = re.compile(r"\b(dark|ocean|sunset|light)\s+(?:theme|style|colou?rs?|look)\b|\btheme\s*[:=]?\s*"
                   r"(dark|ocean|sunset|light)\b", re.IGNORECASE)
TEXTS = r"article|essay|report|e-?mail|letter|memo|story|summary|blog\s+post|document|text"
# Asking to keep the text, not naming a file it is about ("a summary of the file I uploaded" is an answer)
SAVED = (r"as\s+an?\s+(?:file|document|markdown(?:\s+file)?|\.?md(?:\s+file)?)|(?:to|in|into)\s+an?\s+(?:new\s+)?file"
         r"|save(?:d)?|download(?:able)?|markdown\s+file")


class DeckArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: str = Field(min_length=1, max_length=2000, description="what the deck is about, in the user's words")
    slide_count: int = Field(default=6, ge=1, le=50, description="how many slides")
    theme: ThemeName = Field(default="light", description="light, dark, ocean or sunset")


class ProseArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=8000, description="what to write, in the user's words")
    style: ProseStyle = Field(default="article", description="article, summary, email or story")
    length: ProseLength = Field(default="medium", description="short, medium or long")


def deck_intent(message: str) -> dict[str, Any] | None:
    """The deck a message asks for: "make me a 5-slide presentation about volcanoes" (count and theme if said)."""
    asked = asked_to_make(message, DECKS)
    if asked is None:
        return None
    count = number_before(message, r"slides?|pages?")
    arguments: dict[str, Any] = {"topic": asked.topic or message.strip()[:2000]}
    if count is not None:
        arguments["slide_count"] = min(max(count, 1), 50)
    named = THEME.search(message)  # "in the dark theme", not "about dark matter"
    if named is not None:
        arguments["theme"] = (named[1] or named[2]).lower()
    return arguments


def prose_intent(message: str) -> dict[str, Any] | None:
    """A text to keep as a file: "write an article about reefs and save it as a file" (an answer in the chat is
    not one: "write a haiku" is asked of the model)."""
    asked = asked_to_make(message, TEXTS)
    if asked is None or not mentions(message, SAVED):
        return None
    style = "article"
    for word, named in (("e-?mail|letter|memo", "email"), ("story", "story"), ("summary|summari[sz]e", "summary")):
        if mentions(message, word):
            style = named
            break
    length = next((size for size in ("short", "long") if mentions(asked.before, size)), "medium")
    return {"prompt": message.strip()[:8000], "style": style, "length": length}


def describe_deck(arguments: dict[str, Any], output: Any) -> str:
    count = arguments.get("slide_count", 6)
    return (f"I started making a {count}-slide deck about {arguments.get('topic', 'your topic')}: it shows up below "
            "with its progress, then its slides to open, edit and download.")  # fmt: skip


def describe_prose(arguments: dict[str, Any], output: Any) -> str:
    return (f"I started writing the {arguments.get('style', 'article')}: it appears below as it is written and is "
            "saved as a file you can open and download.")  # fmt: skip


class GenerationTools:
    def __init__(self, decks: DeckService, prose: ProseService) -> None:
        self._decks = decks
        self._prose = prose
        self.deck_tool = Tool(
            name="generate_deck",
            description="Make a PowerPoint presentation file (.pptx) with slides about a topic. Use it for every "
            "request to make, create or generate slides, a slide deck, a presentation or a PowerPoint; never write "
            "the slides yourself.",
            args=DeckArgs, group=GENERATION, handler=self.generate_deck, timeout_s=30, describe=describe_deck,
            source="generation", intent=deck_intent, speaks_for_itself=True,
        )  # fmt: skip
        self.prose_tool = Tool(
            name="write_prose",
            description="Write a text and save it as a file: an article, a summary, an email or a story. Use it "
            "only when the user asks for the text to be saved, or for a file or a document; never for an answer "
            "in the chat.",
            args=ProseArgs, group=GENERATION, handler=self.write_prose, timeout_s=30, describe=describe_prose,
            source="generation", intent=prose_intent, speaks_for_itself=True,
        )  # fmt: skip

    def groups(self) -> list[ToolGroup]:
        return [GENERATION]

    async def tools_for(self, principal: Principal) -> list[Tool]:
        return [self.deck_tool, self.prose_tool]

    async def generate_deck(self, args: DeckArgs, context: ToolContext) -> dict[str, Any]:
        job = await self._decks.submit(context.principal, DeckRequest(topic=args.topic, slide_count=args.slide_count,
                                                                      theme=args.theme))  # fmt: skip
        return {"kind": "ppt", "job_id": job.id, "status": job.status, "title": args.topic}

    async def write_prose(self, args: ProseArgs, context: ToolContext) -> dict[str, Any]:
        run_id = await self._prose.start(context.principal, ProseRequest(prompt=args.prompt, style=args.style,
                                                                         length=args.length))  # fmt: skip
        return {"kind": "prose", "run_id": run_id, "status": "running", "title": args.prompt[:80]}
