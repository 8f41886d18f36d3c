"""Text to speech over the API with no network: flite, the first offline engine of the configured order (setup
installs it), speaks real audio heard by pocketsphinx; edge-tts is reported unavailable with its reason and an edge
voice falls back to the closest offline one of its language (espeak-ng's for a language flite lacks); characters
are charged, and bad input gets a clear error."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile

from services.settings import Settings, TtsSettings
from tests.services.tts.listen import heard
from tests.services.tts.test_engines import SilentServer, silent_proxy  # noqa: F401  (a fixture)

TTS = "/api/v1/agent/tts"
SENTENCES = ["the cat sat on the mat", "open the window please", "seven green apples"]
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part


@pytest.fixture
def tts_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(settings: Settings, tts_overrides: dict[str, Any]) -> Settings:
    return settings.model_copy(update={"tts": TtsSettings.model_validate({**settings.tts.model_dump(),
                                                                           **tts_overrides})})  # fmt: skip


def overrides(**changes: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("tts_overrides", [changes], ids=["-".join(changes)])


def path_without(program: str, bin_dir: Path) -> str:
    """A PATH of links to every program on this one but ``program``: this machine as if it were not installed."""
    bin_dir.mkdir()
    for directory in map(Path, os.environ["PATH"].split(os.pathsep)):
        for entry in sorted(directory.iterdir()) if directory.is_dir() else []:
            link = bin_dir / entry.name
            if entry.name != program and not link.is_symlink() and entry.is_file() and os.access(entry, os.X_OK):
                link.symlink_to(entry)
    return str(bin_dir)


@pytest.fixture
def flite_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No flite on PATH when the app finds its programs (request it before the app)."""
    monkeypatch.setenv("PATH", path_without("flite", tmp_path / "bin"))


async def balance(client: httpx.AsyncClient, headers: dict[str, str]) -> float:
    return float((await client.get("/api/v1/agent/credits/balance", headers=headers)).json()["available"])


async def test_voices_say_which_engines_speak_now(client: httpx.AsyncClient, make_account) -> None:
    user = await make_account()
    listed = await client.get(f"{TTS}/voices", headers=user.headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    engines = {engine["name"]: engine for engine in body["engines"]}
    assert list(engines) == TtsSettings().engines == ["edge", "flite", "espeak"]  # in the configured order
    assert engines["flite"]["available"] is True and engines["flite"]["voices"] == 4
    assert engines["espeak"]["available"] is True and engines["espeak"]["voices"] > 2
    assert engines["edge"]["available"] is False and engines["edge"]["online"] is True and engines["edge"]["reason"]
    # The default voice is the first voice of the first engine of the order that speaks: flite's slt.
    assert body["default_voice"] == "flite:slt"
    assert body["default_voice"] == next(voice["id"] for voice in body["voices"] if voice["available"])
    for engine in ("flite", "espeak"):
        genders = {voice["gender"] for voice in body["voices"] if voice["engine"] == engine}
        assert {"female", "male"} <= genders, engine
    assert any(voice["engine"] == "edge" and voice["available"] is False for voice in body["voices"])


async def test_speech_is_real_audio_that_says_the_text_and_is_charged(client: httpx.AsyncClient, make_account) -> None:
    user = await make_account()
    before = await balance(client, user.headers)
    spoken = await client.post(f"{TTS}/synthesize", json={"text": SENTENCES[1], "format": "wav"}, headers=user.headers)
    assert spoken.status_code == 200, spoken.text
    assert spoken.headers["content-type"] == "audio/wav" and spoken.content[:4] == b"RIFF"
    assert spoken.headers["x-tts-engine"] == "flite" and spoken.headers["x-tts-voice"] == "flite:slt"  # the default
    info = soundfile.info(io.BytesIO(spoken.content))
    assert info.channels == 1 and 0.5 < info.duration < 5, info
    assert abs(float(spoken.headers["x-tts-duration"]) - info.duration) < 0.05
    assert heard(spoken.content, SENTENCES) == SENTENCES[1]
    assert await balance(client, user.headers) < before  # characters are charged

    mp3 = await client.post(f"{TTS}/synthesize", json={"text": SENTENCES[2]}, headers=user.headers)
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    decoded = soundfile.info(io.BytesIO(mp3.content))
    assert decoded.format == "MP3" and decoded.duration > 0.5, decoded

    fast = await client.post(f"{TTS}/synthesize", json={"text": SENTENCES[0], "rate": 2.0, "format": "wav"},
                             headers=user.headers)  # fmt: skip
    slow = await client.post(f"{TTS}/synthesize", json={"text": SENTENCES[0], "rate": 0.5, "format": "wav"},
                             headers=user.headers)  # fmt: skip
    assert float(fast.headers["x-tts-duration"]) < 0.7 * float(slow.headers["x-tts-duration"])


async def test_an_online_voice_falls_back_to_an_offline_one_of_its_language(
    client: httpx.AsyncClient, make_account
) -> None:
    user = await make_account()
    voices = (await client.get(f"{TTS}/voices", headers=user.headers)).json()["voices"]
    edge = next(voice for voice in voices if voice["engine"] == "edge" and voice["language"].startswith("en"))
    spoken = await client.post(f"{TTS}/synthesize", json={"text": SENTENCES[0], "voice": edge["id"], "format": "wav"},
                               headers=user.headers)  # fmt: skip
    assert spoken.status_code == 200, spoken.text
    assert edge["id"] == "edge:en-US-AriaNeural" and edge["gender"] == "female"
    # flite, the first offline engine of the order, with its voice of the same language and gender
    assert spoken.headers["x-tts-engine"] == "flite" and spoken.headers["x-tts-voice"] == "flite:slt"
    assert heard(spoken.content, SENTENCES) == SENTENCES[0]


async def test_an_online_voice_of_a_language_flite_lacks_falls_back_to_espeak(
    client: httpx.AsyncClient, make_account
) -> None:
    """flite speaks English only: a German edge voice is spoken by espeak-ng's German voice of its gender, not by
    an English voice reading German."""
    user = await make_account()
    german = {"text": "Guten Morgen, wie geht es dir heute?", "format": "wav"}
    spoken = await client.post(f"{TTS}/synthesize", json={**german, "voice": "edge:de-DE-KatjaNeural"},
                               headers=user.headers)  # fmt: skip
    assert spoken.status_code == 200, spoken.text
    assert spoken.headers["x-tts-engine"] == "espeak" and spoken.headers["x-tts-voice"] == "espeak:de+f3"
    named = await client.post(f"{TTS}/synthesize", json={**german, "voice": "espeak:de+f3"}, headers=user.headers)
    assert named.status_code == 200 and spoken.content == named.content  # the same voice said the same words
    assert soundfile.info(io.BytesIO(spoken.content)).duration > 1


@overrides(max_chars=100)
async def test_bad_input_gets_a_clear_error(client: httpx.AsyncClient, make_account) -> None:
    user = await make_account()
    for body, status, code in (({"text": "hi", "voice": "espeak:klingon"}, 422, "unknown_voice"),
                               ({"text": ""}, 422, "validation_error"), ({"text": "   "}, 422, "empty_text"),
                               ({"text": "x" * 101}, 413, "payload_too_large"),
                               ({"text": "hi", "rate": 9}, 422, "validation_error"),
                               ({"text": "hi", "format": "ogg"}, 422, "validation_error")):  # fmt: skip
        answer = await client.post(f"{TTS}/synthesize", json=body, headers=user.headers)
        assert answer.status_code == status and answer.json()["error"]["code"] == code, (body, answer.text)
    key = await client.post("/api/v1/agent/api-keys", json={"name": "k", "scopes": ["chat"]}, headers=user.headers)
    no_scope = {"Authorization": f"Bearer {key.json()['api_key']}"}
    assert (await client.post(f"{TTS}/synthesize", json={"text": "hi"}, headers=no_scope)).status_code == 403


@overrides(engines=["flite"])
async def test_no_engine_that_can_speak_is_a_503_naming_the_package(
    flite_not_installed: None, client: httpx.AsyncClient, make_account
) -> None:
    user = await make_account()
    answer = await client.post(f"{TTS}/synthesize", json={"text": "hello"}, headers=user.headers)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "tts_unavailable", answer.text
    assert "flite is not installed (apt-get install flite)" in answer.json()["error"]["message"]
    assert (await client.get(f"{TTS}/voices", headers=user.headers)).json()["default_voice"] is None


@pytest.fixture
def edge_behind_a_silent_proxy(silent_proxy: SilentServer, tts_overrides: dict[str, Any]) -> SilentServer:  # noqa: F811
    """edge-tts through a real local proxy that accepts and never answers: its engine looks reachable (the
    connection is made) and then fails, as when the network goes away between a check and a request."""
    tts_overrides.update(edge_proxy=f"http://127.0.0.1:{silent_proxy.port}", edge_connect_timeout_s=1)
    return silent_proxy


async def test_an_engine_that_fails_after_saying_it_could_hands_over_to_the_next(
    edge_behind_a_silent_proxy: SilentServer, client: httpx.AsyncClient, make_account
) -> None:
    user = await make_account()
    voices = (await client.get(f"{TTS}/voices", headers=user.headers)).json()
    assert next(e for e in voices["engines"] if e["name"] == "edge")["available"] is True  # it connects
    spoken = await client.post(f"{TTS}/synthesize", json={"text": SENTENCES[2], "format": "wav"}, headers=user.headers)
    assert spoken.status_code == 200, spoken.text
    assert edge_behind_a_silent_proxy.attempts >= 1
    # the next engine of the order, flite, with its voice closest to edge's first (en-US, female)
    assert spoken.headers["x-tts-engine"] == "flite" and spoken.headers["x-tts-voice"] == "flite:slt"
    assert heard(spoken.content, SENTENCES) == SENTENCES[2]
    again = (await client.get(f"{TTS}/voices", headers=user.headers)).json()
    assert next(e for e in again["engines"] if e["name"] == "edge")["available"] is False  # the failure is kept


async def test_each_voice_has_a_free_sample_in_its_own_engine(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    voices = (await client.get(f"{TTS}/voices", headers=user.headers)).json()["voices"]
    by_id = {voice["id"]: voice for voice in voices}
    before = await balance(client, user.headers)
    for voice_id in ("flite:rms", "espeak:en-us+f3"):
        sample = await client.get(by_id[voice_id]["sample"], headers=user.headers)
        assert sample.status_code == 200 and sample.headers["content-type"] == "audio/mpeg", sample.text
        assert sample.headers["x-tts-voice"] == voice_id and sample.headers["x-tts-engine"] == voice_id.split(":")[0]
        assert heard(sample.content, ["hello this is how i sound", "the cat sat on the mat"]) == (
            "hello this is how i sound")  # fmt: skip
    assert await balance(client, user.headers) == before  # samples are free
    offline = await client.get(by_id["edge:en-US-AriaNeural"]["sample"], headers=user.headers)
    assert offline.status_code == 503 and offline.json()["error"]["code"] == "tts_unavailable"  # no stand-in
    unknown = await client.get(f"{TTS}/sample", params={"voice": "espeak:nope"}, headers=user.headers)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_voice"
