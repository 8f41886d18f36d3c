"""A chat answer read aloud: the speaker button puts a player under the answer with real MP3 audio of its text
(flite, offline), heard by pocketsphinx."""

from __future__ import annotations

import base64
import io

import numpy as np
import soundfile
from nicegui import ui
from nicegui.testing import User

from tests.agent_ui.pages.test_chat_page import SQLITE_ONLY, answered, ask, eventually, marked, signed_in
from tests.services.tts.listen import heard
from tests.upstream import ScriptedUpstream, Step, words

ANSWER = "open the window please"


def as_wav(mp3: bytes) -> bytes:
    samples, rate = soundfile.read(io.BytesIO(mp3), dtype="int16")
    out = io.BytesIO()
    soundfile.write(out, np.asarray(samples), rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


@SQLITE_ONLY
async def test_an_answer_is_read_aloud(ui_env: str, user: User, upstream: ScriptedUpstream) -> None:
    await signed_in(user)
    upstream.push(Step(text=words(ANSWER)))
    await ask(user, "What should I do?")
    await answered(user, ANSWER)
    assert marked(user, "read-aloud-audio") == []
    await user.should_see(marker="read-aloud")  # the finished answer's actions may come a moment after its text
    user.find(marker="read-aloud").click()
    await eventually(lambda: len(marked(user, "read-aloud-audio")) == 1)
    (player,) = marked(user, "read-aloud-audio")
    assert isinstance(player, ui.audio)
    source = str(player.props["src"])
    assert source.startswith("data:audio/mpeg;base64,")
    mp3 = base64.b64decode(source.split(",", 1)[1])
    assert soundfile.info(io.BytesIO(mp3)).format == "MP3"
    assert heard(as_wav(mp3), [ANSWER, "seven green apples", "the cat sat on the mat"]) == ANSWER
