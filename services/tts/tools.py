"""The ``generate_podcast`` tool: the agent starts a podcast job from the chat and answers at once; the chat's card
follows the job to its audio."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.auth.schemas import Principal
from services.tools import GENERATION, Tool, ToolContext, ToolGroup
from services.tools.intents import asked_to_make, mentions
from services.tts.podcast import PodcastService
from services.tts.schemas import PodcastLength, PodcastRequest


class PodcastArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: str = Field(min_length=1, max_length=2000, description="what the hosts talk about, in the user's words")
    length: PodcastLength = Field(default="short", description="short, medium or long")


def podcast_intent(message: str) -> dict[str, Any] | None:
    """The podcast a message asks for: "make a short podcast episode about black holes"."""
    asked = asked_to_make(message, r"podcast(?:\s+episode)?|audio\s+episode")
    if asked is None:
        return None
    length = next((size for size in ("short", "medium", "long") if mentions(asked.before, size)), "short")
    return {"topic": asked.topic or message.strip()[:2000], "length": length}


def describe_podcast(arguments: dict[str, Any], output: Any) -> str:
    return (f"I started making a podcast about {arguments.get('topic', 'your topic')}: it shows up below with its "
            "progress, then the episode to play and download.")  # fmt: skip


class PodcastTools:
    def __init__(self, podcasts: PodcastService) -> None:
        self._podcasts = podcasts
        self.tool = Tool(
            name="generate_podcast",
            description="Make a podcast: an audio file (MP3) of two hosts talking about a topic. Use it for every "
            "request to make, create or generate a podcast or an audio episode; never write the script yourself.",
            args=PodcastArgs, group=GENERATION, handler=self.generate, timeout_s=30, describe=describe_podcast,
            source="generation", intent=podcast_intent, speaks_for_itself=True,
        )  # fmt: skip

    def groups(self) -> list[ToolGroup]:
        return [GENERATION]

    async def tools_for(self, principal: Principal) -> list[Tool]:
        return [self.tool]

    async def generate(self, args: PodcastArgs, context: ToolContext) -> dict[str, Any]:
        job = await self._podcasts.submit(context.principal, PodcastRequest(topic=args.topic, length=args.length))
        return {"kind": "podcast", "job_id": job.id, "status": job.status, "title": args.topic}
