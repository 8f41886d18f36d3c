"""What a message plainly asks a tool for ("make me a deck about tides"), read without a model: a small model
without native tool calls answers such requests by writing the slides or the script itself, so a tool declares its
``intent`` and the turn calls it first (see ``Tool.intent``). Only an imperative asking to make the thing counts;
a question about the thing ("what makes a good presentation?") never does."""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPENING = (r"^\s*(?:(?:hey|hi|ok|okay|so)[,!.\s]+)?(?:please\s+)?"
            r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?|i\s+(?:want|need|would\s+like)\s+you\s+to\s+"
            r"|let'?s\s+)?")  # fmt: skip
MAKE = r"make|create|generate|build|prepare|produce|put\s+together|draft|write|compose|record|give\s+me"
_TOPIC = re.compile(r"\b(?:about|on|covering|regarding|explaining|of)\s+(?P<topic>\S.*)$", re.IGNORECASE | re.DOTALL)
# What may stand between the verb and the thing asked for ("me a short 5-slide"): anything else ("feedback on my",
# "the second", "some") means the thing is not what is asked for.
_FILLER = re.compile(r"^(?:me|us|a|an|new|one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|short|long|"
                     r"medium|quick|brief|simple|small|big|full|detailed|complete|nice|good|great|professional|"
                     r"\d{1,3}(?:-\w+)?|\w+-(?:slide|page|minute)s?)$", re.IGNORECASE)
_POLITE_QUESTION = re.compile(r"^\s*(?:please\s+)?(?:can|could|would|will)\s+you\b", re.IGNORECASE)


@dataclass(frozen=True)
class Asked:
    """A request to make something: its topic (what follows "about"/"on", else what follows the thing) and the
    words between the verb and the thing ("a short", "me a 5-slide")."""

    topic: str
    before: str


def asked_to_make(message: str, things: str, *, verbs: str = MAKE) -> Asked | None:
    """``message`` asks to make one of ``things`` (a regex of nouns) when it opens with one of ``verbs`` (after a
    polite opening) and names the thing soon after."""
    opened = re.match(f"{_OPENING}(?:{verbs})\\b(?P<rest>.*)$", message, re.IGNORECASE | re.DOTALL)
    if opened is None:
        return None
    rest = opened["rest"]
    thing = re.search(f"\\b(?:{things})\\b", rest, re.IGNORECASE)
    if thing is None:
        return None
    between = rest[: thing.start()]
    if not all(_FILLER.match(word.strip("-")) for word in between.split()):
        return None
    if message.rstrip().endswith("?") and not _POLITE_QUESTION.match(message):
        return None
    after = rest[thing.end():]
    about = _TOPIC.search(after)
    topic = (about["topic"] if about else after).strip(" \t\n.!?;:,")
    return Asked(topic=topic[:2000], before=between)


def number_before(text: str, unit: str) -> int | None:
    """A count written before a unit: "5-slide", "10 slides", "twelve" is not read."""
    found = re.search(f"(\\d{{1,3}})\\s*-?\\s*(?:{unit})", text, re.IGNORECASE)
    return int(found[1]) if found else None


def mentions(text: str, words: str) -> bool:
    return re.search(f"\\b(?:{words})\\b", text, re.IGNORECASE) is not None
