"""Requests a small model would answer itself, read without it: each generation tool's intent matches what plainly
asks to make its file, with its arguments, and nothing that only talks about such a file."""

from __future__ import annotations

import pytest

from services.generation.tools import deck_intent, prose_intent
from services.tts.tools import podcast_intent


@pytest.mark.parametrize(("message", "expected"), [
    ("Make me a 5-slide presentation about volcanoes.", {"topic": "volcanoes", "slide_count": 5}),
    ("Create a slide deck on the history of tea.", {"topic": "the history of tea"}),
    ("Please can you generate 10 slides about our Q3 results in the dark theme?",
     {"topic": "our Q3 results in the dark theme", "slide_count": 10, "theme": "dark"}),
    ("ok, build a PowerPoint covering solar panels", {"topic": "solar panels"}),
    ("Could you prepare a presentation for the board about hiring", {"topic": "hiring"}),
    ("make slides: renewable energy", {"topic": ": renewable energy".strip(" :")}),
    ("Make a 70 slide deck about everything", {"topic": "everything", "slide_count": 50}),
])  # fmt: skip
def test_a_plain_request_for_a_deck_is_read_with_its_arguments(message: str, expected: dict[str, object]) -> None:
    assert deck_intent(message) == expected


@pytest.mark.parametrize("message", [
    "What makes a good slide presentation? Answer in two sentences.",
    "How many slides should a 10 minute talk have?",
    "I gave a presentation about volcanoes yesterday.",
    "Write a haiku about autumn leaves.",
    "Make a list of things to pack, and I will put them on slides later in some deck maybe",
    "Explain what a pptx file is.",
    "Give me feedback on my presentation",
    "Make the second slide about costs instead",
    "Could you write a report on why my presentation failed?",
    "Make some slides better?",
])  # fmt: skip
def test_talk_about_decks_is_not_a_request_for_one(message: str) -> None:
    assert deck_intent(message) is None


def test_podcasts_and_texts_to_keep() -> None:
    assert podcast_intent("Make a short podcast episode about black holes.") == {"topic": "black holes",
                                                                                 "length": "short"}  # fmt: skip
    assert podcast_intent("Can you record a long podcast on tides") == {"topic": "tides", "length": "long"}
    assert podcast_intent("What is a podcast?") is None
    assert prose_intent("Write an article about coral reefs and save it as a file.") == {
        "prompt": "Write an article about coral reefs and save it as a file.", "style": "article", "length": "medium"}
    assert prose_intent("Draft a short email to my landlord about the boiler as a document")["style"] == "email"  # type: ignore[index]
    assert prose_intent("Write an article about coral reefs.") is None  # an answer in the chat, not a file
    assert prose_intent("Write a haiku about the sea and save it") is None  # not a kind of text it writes
    assert prose_intent("Write a summary of the file I uploaded") is None  # about a file, not kept as one
    assert podcast_intent("Can you give me some podcast recommendations about history?") is None
    assert deck_intent("Make a deck about dark matter") == {"topic": "dark matter"}  # no theme from the topic
