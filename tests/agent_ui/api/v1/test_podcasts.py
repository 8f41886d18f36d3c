"""Podcasts over the API with no network: the scripted model writes the dialogue, flite speaks it, and the MP3
is checked for real (format, rate, duration against the transcript, pauses between turns, each line heard by
pocketsphinx in order); one line edited is spliced in with the later lines moved; grounded scripts keep their
citations; bad input gets a clear error; a line that cannot be spoken fails the job and leaves no file."""

from __future__ import annotations

import io
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from mutagen.id3 import ID3

from services.settings import Settings, TtsSettings
from services.tts import audio
from tests.agent_ui.api.v1.test_jobs import until
from tests.agent_ui.api.v1.test_rag import failed, ready, upload
from tests.services.rag.files import encrypted_pdf
from tests.services.tts.listen import heard
from tests.sse import parse
from tests.upstream import ScriptedUpstream, Step

AGENT = "/api/v1/agent"
GEN = f"{AGENT}/generation"
Json = dict[str, Any]

OUTLINE = {"title": "Lighthouses", "chapters": ["The lamp", "The keepers"]}
CHAPTERS = [
    [("Alex", "welcome to the show", [1]), ("Sam", "the lamp burned oil", [1]), ("Alex", "open the window please", []),
     ("Sam", "seven green apples", []), ("Alex", "the cat sat on the mat", [])],
    [("Sam", "the keepers trimmed the wicks", [1]), ("Alex", "the harbour got gas", [1]),
     ("Sam", "thank you for listening", []), ("Alex", "see you next time", []), ("Sam", "good night", [])],
]  # fmt: skip
SPOKEN = [text for chapter in CHAPTERS for _, text, _ in chapter]
EDITED = "the ferry leaves the harbour at noon every single day"
PASTED = "Lighthouse keepers trimmed the wicks at dusk.\n\nThe lamp burned colza oil until the harbour got gas."


def script_steps(*, grounded: bool = True) -> list[Step]:
    """The outline and each chapter as the model answers them (with no resources, the schema allows no sources)."""
    steps = [Step(text=[json.dumps(OUTLINE)])]
    for chapter in CHAPTERS:
        lines = [{"text": t, "sources": c if grounded else []} for _, t, c in chapter]  # speakers take turns
        steps.append(Step(text=[json.dumps({"lines": lines})]))
    return steps


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A real TCP server that accepts connections, reads, and never answers (edge-tts's proxy that hangs)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for connection in held:
        connection.close()


@pytest.fixture
def tts_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if getattr(request, "param", None) == "edge-silent":
        port = request.getfixturevalue("silent_port")
        return {"engines": ["edge"], "edge_deadline_s": 1, "edge_proxy": f"http://127.0.0.1:{port}"}
    return {}


@pytest.fixture
def settings(settings: Settings, tts_overrides: dict[str, Any]) -> Settings:
    return settings.model_copy(update={"tts": TtsSettings.model_validate({**settings.tts.model_dump(),
                                                                           **tts_overrides})})  # fmt: skip


async def pasted_resource(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    created = await client.post(f"{AGENT}/rag/resources", json={"text": PASTED, "title": "Harbour notes"},
                                headers=headers)  # fmt: skip
    return str((await ready(client, headers, created))["id"])


async def events_of(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> list[tuple[str, Json]]:
    response = await client.get(f"{GEN}/jobs/{job_id}/events", headers=headers)
    return [(event.type, event.data) for event in parse(response.text)]


def clip(samples: np.ndarray[Any, Any], rate: int, start_s: float, end_s: float) -> bytes:
    return audio.encode_wav(samples[round(start_s * rate):round(end_s * rate)], rate)


async def test_a_grounded_two_voice_podcast_is_real_audio_with_a_transcript_and_one_line_can_be_respoken(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    resource = await pasted_resource(client, alice.headers)
    before = float((await client.get(f"{AGENT}/credits/balance", headers=alice.headers)).json()["available"])
    upstream.push(*script_steps())
    started = await client.post(f"{GEN}/podcast", json={"rag_resource_ids": [resource]}, headers=alice.headers)
    assert started.status_code == 202, started.text
    job = await until(client, alice.headers, started.json()["id"], "done", "failed")
    assert job["status"] == "done", job
    assert job["result"]["lines"] == 10 and job["result"]["title"] == "Lighthouses"
    assert set(job["result"]["stage_s"]) == {"script", "voices", "mixing"}

    # the model was given the passages, numbered, and the turns: exactly five lines, the speakers alternating
    chapter_request = upstream.requests[2]
    assert "[1] (Harbour notes)" in chapter_request["messages"][-1]["content"]
    assert "in this order: Sam, Alex, Sam, Alex, Sam" in chapter_request["messages"][-1]["content"]
    # greedy; the penalty against loops is for the local model only (some providers refuse it)
    assert chapter_request["temperature"] == 0 and "frequency_penalty" not in chapter_request
    outline_schema = json.dumps(upstream.requests[0]["response_format"]["json_schema"]["schema"])
    assert '"maxItems": 2' in outline_schema and '"minItems": 2' in outline_schema  # exactly two chapters
    schema = chapter_request["response_format"]["json_schema"]["schema"]
    assert '"minItems": 5, "maxItems": 5' in json.dumps(schema) or '"maxItems": 5, "minItems": 5' in json.dumps(schema)

    progress = [data for kind, data in await events_of(client, alice.headers, job["id"]) if kind == "progress"]
    stages = [p["stage"] for p in progress]
    assert stages.index("sources") < stages.index("script") < stages.index("voices") < stages.index("mixing")
    assert any(p["stage"] == "voices" and p["total"] == 10 for p in progress)

    podcast = (await client.get(f"{GEN}/podcasts/{job['id']}", headers=alice.headers)).json()
    lines = podcast["lines"]
    assert [line["text"] for line in lines] == SPOKEN
    assert [line["speaker"] for line in lines] == [s for chapter in CHAPTERS for s, _, _ in chapter]
    voices = {speaker["name"]: speaker["voice"] for speaker in podcast["speakers"]}
    # cast from the first offline engine of the order (flite, installed by the setup): a female host, then a male
    assert (voices["Alex"], voices["Sam"]) == ("flite:slt", "flite:rms")
    assert all(line["voice"] == voices[line["speaker"]] and line["engine"] == "flite" for line in lines)
    assert lines[1]["citations"][0]["resource_id"] == resource and lines[1]["citations"][0]["title"] == "Harbour notes"
    assert lines[2]["citations"] == [] and podcast["sources"][0]["resource_id"] == resource
    assert [c["title"] for c in podcast["chapters"]] == OUTLINE["chapters"]
    assert podcast["chapters"][1]["first_line"] == 5 and podcast["chapters"][1]["start_s"] == lines[5]["start_s"]

    # the audio: an MP3 at 24 kHz whose length is the lines plus their pauses, every line heard, silence between
    mp3 = await client.get(f"{AGENT}/artifacts/{podcast['audio']['id']}", headers=alice.headers)
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    info = soundfile.info(io.BytesIO(mp3.content))
    assert info.format == "MP3" and info.samplerate == 24000 and info.channels == 1
    tags = ID3(io.BytesIO(mp3.content))  # chapter marks a podcast player shows
    marks = sorted(tags.getall("CHAP"), key=lambda frame: frame.start_time)
    assert [str(m.sub_frames["TIT2"]) for m in marks] == OUTLINE["chapters"] and str(tags["TIT2"]) == "Lighthouses"
    assert marks[1].start_time == round(podcast["chapters"][1]["start_s"] * 1000)
    spoken_s = sum(line["end_s"] - line["start_s"] for line in lines)
    assert abs(spoken_s + 8 * 0.45 + 1.2 - podcast["duration_s"]) < 0.01
    assert abs(info.duration - podcast["duration_s"]) < 0.15, (info.duration, podcast["duration_s"])
    samples, rate = audio.decode(mp3.content)
    assert audio.loudness_dbfs(mp3.content) > -30
    for line, following in itertools.pairwise(lines):
        gap = samples[round((line["end_s"] + 0.1) * rate):round((following["start_s"] - 0.1) * rate)]
        assert len(gap) and float(np.sqrt(np.mean(gap.astype(np.float64) ** 2))) < 0.01, line  # a pause
    options = [*SPOKEN, EDITED]
    assert [heard(clip(samples, rate, line["start_s"], line["end_s"]), options) for line in lines] == SPOKEN

    balance = float((await client.get(f"{AGENT}/credits/balance", headers=alice.headers)).json()["available"])
    assert balance < before

    # one line spoken again: the same artifact in a new version, that line heard anew, the later lines moved
    edited = await client.patch(f"{GEN}/podcasts/{job['id']}/lines/2", json={"text": EDITED}, headers=alice.headers)
    assert edited.status_code == 200, edited.text
    after = edited.json()
    assert after["version"] == 2 and after["audio"]["id"] == podcast["audio"]["id"]
    assert after["audio"]["version"] == podcast["audio"]["version"] + 1
    assert after["lines"][2]["text"] == EDITED and after["lines"][:2] == lines[:2]
    shift = after["lines"][2]["end_s"] - lines[2]["end_s"]
    assert abs(shift) > 0.05
    for old, new in zip(lines[3:], after["lines"][3:], strict=True):
        assert abs(new["start_s"] - (old["start_s"] + shift)) < 0.002 and new["text"] == old["text"]
    assert abs(after["duration_s"] - (podcast["duration_s"] + shift)) < 0.002
    assert abs(after["chapters"][1]["start_s"] - (podcast["chapters"][1]["start_s"] + shift)) < 0.002
    mp3 = await client.get(f"{AGENT}/artifacts/{podcast['audio']['id']}", headers=alice.headers)
    samples, rate = audio.decode(mp3.content)
    assert abs(soundfile.info(io.BytesIO(mp3.content)).duration - after["duration_s"]) < 0.15
    expected = [*SPOKEN[:2], EDITED, *SPOKEN[3:]]
    assert [heard(clip(samples, rate, line["start_s"], line["end_s"]), options) for line in after["lines"]] == expected

    transcript = await client.get(f"{GEN}/artifacts/{podcast['audio']['id']}/transcript", headers=alice.headers)
    assert transcript.status_code == 200 and transcript.json()["lines"] == after["lines"]

    # another user sees none of it
    for path in (f"{GEN}/podcasts/{job['id']}", f"{GEN}/artifacts/{podcast['audio']['id']}/transcript",
                 f"{AGENT}/artifacts/{podcast['audio']['id']}", f"{GEN}/jobs/{job['id']}"):  # fmt: skip
        assert (await client.get(path, headers=bob.headers)).status_code == 404, path
    refused = await client.patch(f"{GEN}/podcasts/{job['id']}/lines/2", json={"text": "x"}, headers=bob.headers)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"

    # deleting the job deletes the podcast and both files
    assert (await client.delete(f"{GEN}/jobs/{job['id']}", headers=alice.headers)).status_code == 204
    for path in (f"{GEN}/podcasts/{job['id']}", f"{AGENT}/artifacts/{podcast['audio']['id']}",
                 f"{AGENT}/artifacts/{podcast['master']['id']}"):  # fmt: skip
        assert (await client.get(path, headers=alice.headers)).status_code == 404, path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_input_gets_a_clear_error(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    foreign = await pasted_resource(client, bob.headers)
    cases: list[tuple[Json, int, str]] = [
        ({}, 422, "validation_error"),
        ({"text": "   "}, 422, "validation_error"),
        ({"topic": "tides", "speakers": [{"name": "A"}, {"name": "a"}]}, 422, "validation_error"),
        ({"topic": "tides", "speakers": [{"name": f"S{n}"} for n in range(5)]}, 422, "validation_error"),
        ({"topic": "tides", "speakers": [{"name": "A", "voice": "espeak:nope"}]}, 422, "unknown_voice"),
        ({"topic": "tides", "model": "no-such-model"}, 422, "unknown_model"),
        ({"topic": "tides", "language": "xx"}, 422, "unknown_language"),
        ({"topic": "tides", "length": "epic"}, 422, "validation_error"),
        ({"rag_resource_ids": [foreign]}, 404, "not_found"),
    ]
    for body, code, error in cases:
        answer = await client.post(f"{GEN}/podcast", json=body, headers=alice.headers)
        assert answer.status_code == code and answer.json()["error"]["code"] == error, (body, answer.text)

    # a model that never writes valid JSON fails the job with the reason, and nothing is stored
    upstream.push(*[Step(text=["not json"]) for _ in range(3)])
    started = await client.post(f"{GEN}/podcast", json={"topic": "tides"}, headers=alice.headers)
    job = await until(client, alice.headers, started.json()["id"], "done", "failed")
    assert job["status"] == "failed" and job["error"]["code"] == "malformed_output" and job["artifacts"] == []
    assert (await client.get(f"{GEN}/podcasts/{job['id']}", headers=alice.headers)).status_code == 404

    upstream.push(*script_steps(grounded=False))
    started = await client.post(f"{GEN}/podcast", json={"topic": "tides"}, headers=alice.headers)
    job = await until(client, alice.headers, started.json()["id"], "done", "failed")
    assert job["status"] == "done", job
    line = f"{GEN}/podcasts/{job['id']}/lines"
    assert (await client.patch(f"{line}/10", json={"text": "hi"}, headers=alice.headers)).status_code == 404
    assert (await client.patch(f"{line}/-1", json={"text": "hi"}, headers=alice.headers)).status_code == 422
    assert (await client.patch(f"{line}/0", json={"text": " "}, headers=alice.headers)).status_code == 422
    only_marks = await client.patch(f"{line}/0", json={"text": "[1]"}, headers=alice.headers)
    assert only_marks.status_code == 422 and only_marks.json()["error"]["code"] == "empty_text", only_marks.text
    unknown = await client.patch(f"{line}/0", json={"text": "hi", "voice": "edge:nope"}, headers=alice.headers)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_voice"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("tts_overrides", ["edge-silent"], indirect=True)
async def test_a_line_that_cannot_be_spoken_fails_the_job_and_leaves_no_file(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    """edge-tts is reachable (a proxy accepts the connection) but never answers: the first line fails after the
    deadline, the job fails naming the line, and no audio is stored or charged."""
    alice = await make_account()
    before = (await client.get(f"{AGENT}/credits/balance", headers=alice.headers)).json()
    upstream.push(*script_steps(grounded=False))
    started = await client.post(f"{GEN}/podcast", json={"topic": "tides"}, headers=alice.headers)
    assert started.status_code == 202, started.text
    job = await until(client, alice.headers, started.json()["id"], "done", "failed")
    assert job["status"] == "failed" and job["error"]["code"] == "line_failed", job
    assert "line 1 (Alex)" in job["error"]["message"] and job["artifacts"] == []
    after = (await client.get(f"{AGENT}/credits/balance", headers=alice.headers)).json()
    assert after["held"] == "0" or float(after["held"]) == 0
    assert float(after["available"]) <= float(before["available"])  # the script's model calls were paid, no audio


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_topic_over_resources_gives_the_model_the_passages_about_it_first(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice = await make_account()
    harbour = await pasted_resource(client, alice.headers)
    text = "High water comes twice a day at Brest.\n\nSpring tides follow the full moon."
    body = {"title": "Tide tables", "text": text}
    tides = await client.post(f"{AGENT}/rag/resources", json=body, headers=alice.headers)
    tides_id = (await ready(client, alice.headers, tides))["id"]
    upstream.push(*script_steps())
    asked = {"topic": "spring tides and the moon", "rag_resource_ids": [harbour, tides_id]}
    started = await client.post(f"{GEN}/podcast", headers=alice.headers, json=asked)
    job = await until(client, alice.headers, started.json()["id"], "done", "failed")
    assert job["status"] == "done", job
    prompt = upstream.requests[1]["messages"][-1]["content"]
    assert prompt.index("[1] (Tide tables)") < prompt.index("(Harbour notes)")
    podcast = (await client.get(f"{GEN}/podcasts/{job['id']}", headers=alice.headers)).json()
    assert podcast["sources"][0]["resource_id"] == tides_id
    assert podcast["lines"][1]["citations"][0]["title"] == "Tide tables"

    # a resource that failed to ingest is refused before anything is queued
    broken = await failed(client, alice.headers, await upload(client, alice.headers, "secret.pdf", encrypted_pdf()))
    refused = await client.post(f"{GEN}/podcast", json={"rag_resource_ids": [broken["id"]]}, headers=alice.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "resource_not_ready", refused.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("tts_overrides", [{"engines": ["edge"], "edge_connect_timeout_s": 0.5}], indirect=False)
async def test_no_engine_that_can_speak_is_refused_before_anything_is_queued(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    """Even when every host names a voice: no script is written (and paid) for a podcast no one can speak."""
    alice = await make_account()
    body = {"topic": "tides", "speakers": [{"name": "A", "voice": "edge:en-US-AriaNeural"}]}
    refused = await client.post(f"{GEN}/podcast", json=body, headers=alice.headers)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "tts_unavailable", refused.text
    assert "edge" in refused.json()["error"]["message"] and upstream.requests == []
    jobs = (await client.get(f"{GEN}/jobs", headers=alice.headers)).json()
    assert jobs["items"] == []
