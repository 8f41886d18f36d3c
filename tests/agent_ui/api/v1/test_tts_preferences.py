"""Each user's voice over the API (no network: flite speaks the default voice, espeak-ng the chosen one): unset it
is null and the default voice speaks; a chosen voice and rate are what `POST /tts/synthesize` without `voice` uses
(the same audio as asking for them); a voice no engine has is refused; one user never sees nor changes another's;
auth and scope are required."""

from __future__ import annotations

import io

import httpx
import pytest
import soundfile
from fastapi import FastAPI

from services.clock import utcnow
from services.settings import Settings
from services.tts.models import VoicePreference

TTS = "/api/v1/agent/tts"
TEXT = "open the window please"
PREFERRED = "espeak:en-gb+f2"  # not the default voice (flite:slt: flite comes before espeak in the order)


@pytest.fixture
def tts_engines() -> list[str] | None:
    return None


@pytest.fixture
def settings(settings: Settings, tts_engines: list[str] | None) -> Settings:
    if tts_engines is None:
        return settings
    return settings.model_copy(update={"tts": settings.tts.model_copy(update={"engines": tts_engines})})


async def speak(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> httpx.Response:
    spoken = await client.post(f"{TTS}/synthesize", json={"text": TEXT, "format": "wav", **body}, headers=headers)
    assert spoken.status_code == 200, spoken.text
    return spoken


def seconds(spoken: httpx.Response) -> float:
    return float(soundfile.info(io.BytesIO(spoken.content)).duration)


async def test_unset_the_default_voice_speaks_and_a_chosen_voice_and_rate_are_used_when_none_is_named(
    client: httpx.AsyncClient, make_account
) -> None:
    user = await make_account()
    default_voice = (await client.get(f"{TTS}/voices", headers=user.headers)).json()["default_voice"]
    assert default_voice == "flite:slt" != PREFERRED  # the first voice of the first offline engine of the order
    unset = await client.get(f"{TTS}/preferences", headers=user.headers)
    assert unset.status_code == 200, unset.text
    assert unset.json() == {"voice": None, "rate": 1.0, "effective_voice": default_voice}
    plain = await speak(client, user.headers)
    assert plain.headers["x-tts-voice"] == default_voice and plain.headers["x-tts-engine"] == "flite"

    chosen = await client.put(f"{TTS}/preferences", json={"voice": PREFERRED, "rate": 1.5}, headers=user.headers)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json() == {"voice": PREFERRED, "rate": 1.5, "effective_voice": PREFERRED}
    assert (await client.get(f"{TTS}/preferences", headers=user.headers)).json() == chosen.json()

    mine = await speak(client, user.headers)
    assert mine.headers["x-tts-voice"] == PREFERRED and mine.headers["x-tts-engine"] == "espeak"
    assert mine.content == (await speak(client, user.headers, voice=PREFERRED, rate=1.5)).content  # voice and rate
    assert seconds(mine) < 0.8 * seconds(await speak(client, user.headers, voice=PREFERRED))
    # A rate in the request wins over the preferred one; a voice in the request is spoken at its given rate.
    assert (await speak(client, user.headers, rate=1.0)).content == (
        await speak(client, user.headers, voice=PREFERRED, rate=1.0)
    ).content
    named = await speak(client, user.headers, voice=default_voice)
    assert named.headers["x-tts-voice"] == default_voice and named.content == plain.content

    cleared = await client.put(f"{TTS}/preferences", json={"voice": None}, headers=user.headers)
    assert cleared.json() == {"voice": None, "rate": 1.0, "effective_voice": default_voice}
    assert (await speak(client, user.headers)).content == plain.content


async def test_a_voice_no_engine_has_is_refused_and_bad_rates_and_fields_too(
    client: httpx.AsyncClient, make_account
) -> None:
    user = await make_account()
    assert (await client.put(f"{TTS}/preferences", json={"voice": PREFERRED}, headers=user.headers)).is_success
    for body, code in (({"voice": "espeak:klingon"}, "unknown_voice"), ({"voice": ""}, "validation_error"),
                       ({"rate": 2.5}, "validation_error"), ({"rate": 0.25}, "validation_error"),
                       ({"voice": PREFERRED, "pitch": 3}, "validation_error")):  # fmt: skip
        refused = await client.put(f"{TTS}/preferences", json=body, headers=user.headers)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == code, (body, refused.text)
    kept = (await client.get(f"{TTS}/preferences", headers=user.headers)).json()
    assert kept["voice"] == PREFERRED and kept["rate"] == 1.0  # nothing refused was stored


async def test_one_users_voice_is_neither_seen_nor_used_nor_changed_by_another(
    client: httpx.AsyncClient, make_account
) -> None:
    alice, bob = await make_account("alice@example.com"), await make_account("bob@example.com")
    default_voice = (await client.get(f"{TTS}/voices", headers=bob.headers)).json()["default_voice"]
    assert (await client.put(f"{TTS}/preferences", json={"voice": PREFERRED, "rate": 0.75},
                             headers=alice.headers)).is_success  # fmt: skip
    assert (await client.get(f"{TTS}/preferences", headers=bob.headers)).json() == {
        "voice": None, "rate": 1.0, "effective_voice": default_voice}  # fmt: skip
    assert (await speak(client, bob.headers)).headers["x-tts-voice"] == default_voice

    male = "espeak:en-us"
    assert (await client.put(f"{TTS}/preferences", json={"voice": male}, headers=bob.headers)).is_success
    assert (await client.get(f"{TTS}/preferences", headers=alice.headers)).json() == {
        "voice": PREFERRED, "rate": 0.75, "effective_voice": PREFERRED}  # fmt: skip
    assert (await speak(client, alice.headers)).headers["x-tts-voice"] == PREFERRED
    assert (await speak(client, bob.headers)).headers["x-tts-voice"] == male


async def test_auth_and_the_tts_scope_are_required(client: httpx.AsyncClient, make_account) -> None:
    user = await make_account()
    for method, body in (("GET", None), ("PUT", {"voice": PREFERRED})):
        anonymous = await client.request(method, f"{TTS}/preferences", json=body)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"], anonymous.text
    key = await client.post("/api/v1/agent/api-keys", json={"name": "k", "scopes": ["chat"]}, headers=user.headers)
    assert key.status_code == 201, key.text
    no_scope = {"Authorization": f"Bearer {key.json()['api_key']}"}
    for method, body in (("GET", None), ("PUT", {"voice": PREFERRED})):
        refused = await client.request(method, f"{TTS}/preferences", json=body, headers=no_scope)
        assert refused.status_code == 403, refused.text
    assert (await client.get(f"{TTS}/preferences", headers=user.headers)).json()["voice"] is None  # nothing stored
    tts_key = await client.post("/api/v1/agent/api-keys", json={"name": "t", "scopes": ["tts"]}, headers=user.headers)
    with_scope = {"Authorization": f"Bearer {tts_key.json()['api_key']}"}
    assert (await client.put(f"{TTS}/preferences", json={"voice": PREFERRED}, headers=with_scope)).status_code == 200


@pytest.mark.parametrize("tts_engines", [["espeak"]])
async def test_a_voice_no_engine_has_any_more_gives_way_to_the_default(
    client: httpx.AsyncClient, make_account, app: FastAPI
) -> None:
    """A flite voice chosen while flite was among the engines, which an admin has since taken out: it is still
    what the user chose, and the default voice speaks (no 422 for what the user cannot see)."""
    user = await make_account()
    async with app.state.services.core.db.transaction() as session:
        session.add(VoicePreference(user_id=user.id, voice="flite:slt", rate=1.25, updated_at=utcnow()))
    default_voice = (await client.get(f"{TTS}/voices", headers=user.headers)).json()["default_voice"]
    assert default_voice.startswith("espeak:")
    read = (await client.get(f"{TTS}/preferences", headers=user.headers)).json()
    assert read == {"voice": "flite:slt", "rate": 1.25, "effective_voice": default_voice}
    spoken = await speak(client, user.headers)
    assert spoken.headers["x-tts-voice"] == default_voice
    assert spoken.content == (await speak(client, user.headers, voice=default_voice, rate=1.25)).content
    refused = await client.put(f"{TTS}/preferences", json={"voice": "flite:slt"}, headers=user.headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "unknown_voice"
