"""Generation tools for chat: the agent starts a deck or a text and answers at once with what it started; the chat
shows a card that follows the work (a job, or prose's run) to its file. Stopping the turn leaves the work going."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.auth.schemas import Principal
from services.generation.decks import DeckService
from services.generation.prose import ProseService
from services.generation.schemas import DeckRequest, ProseLength, ProseRequest, ProseStyle, ThemeName
from services.tools import GENERATION, Tool, ToolContext, ToolGroup


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


def describe_deck(arguments: dict[str, Any], output: Any) -> str:
    count = arguments.get("slide_count", 6)
    return (f"Started making a {count}-slide deck about {arguments.get('topic', 'the topic')} (job "
            f"{output.get('job_id')}). Tell the user it is being made and shows up below with its progress; do not "
            "write the slides yourself.")  # fmt: skip


def describe_prose(arguments: dict[str, Any], output: Any) -> str:
    return (f"Started writing the {arguments.get('style', 'article')} (run {output.get('run_id')}). Tell the user it "
            "is being written below and will be saved as a file; do not write it yourself.")  # fmt: skip


class GenerationTools:
    def __init__(self, decks: DeckService, prose: ProseService) -> None:
        self._decks = decks
        self._prose = prose
        self.deck_tool = Tool(
            name="generate_deck",
            description="Make a PowerPoint slide deck (.pptx file) about a topic. Use it when the user asks for "
            "slides, a deck or a presentation. It runs in the background and answers at once.",
            args=DeckArgs, group=GENERATION, handler=self.generate_deck, timeout_s=30, describe=describe_deck,
            source="generation",
        )  # fmt: skip
        self.prose_tool = Tool(
            name="write_prose",
            description="Write a longer text saved as a file: an article, a summary, an email or a story. Use it "
            "when the user asks for a document or a file to be written. It answers at once and writes below.",
            args=ProseArgs, group=GENERATION, handler=self.write_prose, timeout_s=30, describe=describe_prose,
            source="generation",
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
