"""TTS figures: speed and intelligibility of every engine that can speak here, and the default they argue for.

Prints, per engine (an unavailable one gets a line with its reason): the real-time factor of synthesis straight
through the engine (synthesis time / audio duration, median over a fixed set of Harvard sentences) and through
`POST /api/v1/agent/tts/synthesize` (mp3) on a real `uvicorn main:app` process with the ratio API / engine (and the
MP3 encoding's own share); for its default voice and one of the other gender, the grammar accuracy (pocketsphinx
choosing among the whole sentence set: the share of clips heard exactly) and the free-decoding word accuracy
(1 - WER with pocketsphinx's bundled language model, when it loads offline); then the engine the measure picks as
the default (default voice's grammar accuracy, then word accuracy, then speed) against the configured
order (`Settings().tts.engines`), and the real-time factor of the audio stage of a 10-line two-voice podcast with
that engine made by the real job (`POST /generation/podcast`; its script from the scripted model, so the model is
excluded: the job's own `stage_s` voices + mixing over the audio's length), against a 0.05x target offline, and the
time to re-speak one line (`PATCH /generation/podcasts/{id}/lines/3`).
Run: `.venv/bin/python -m bench.tts`; `--quick` takes 3 sentences (the test suite runs it; its figures mean little).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pocketsphinx import Decoder

from bench.common import signed_in
from services.settings import Settings
from services.tts import audio
from services.tts.engines import TtsEngine, Voice, installed_engines
from tests.live_server import live_server
from tests.services.tts.listen import RATE, heard, words
from tests.upstream import ScriptedUpstream, Step

# IEEE "Harvard" sentences (phonetically balanced, every word in pocketsphinx's dictionary).
SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
]
PODCAST = [
    "Welcome back to the show, today we talk about small gardens.",
    "Thanks for having me, I have grown herbs on my balcony for years.",
    "What is the first thing a beginner should plant?",
    "Start with mint and basil, they forgive almost every mistake.",
    "How much sun do they need each day?",
    "About six hours, but mint is happy with less.",
    "And what about water, is more always better?",
    "No, most plants drown long before they dry out.",
    "That is good advice for all of us, thank you.",
    "Thank you, and happy planting to everyone listening.",
]
QUICK_SENTENCES = 3
PODCAST_TARGET_RTF = 0.05
TTS = "/api/v1/agent/tts"


@dataclass
class Heard:
    """How well pocketsphinx understood one voice over the sentence set."""

    voice: Voice
    grammar_accuracy: float
    word_accuracy: float | None  # None when the free decoder does not load


@dataclass
class EngineFigures:
    """What one engine measured: speed both ways (its default voice) and how well pocketsphinx understood its
    default voice and, for the podcast's second host, one of the other gender."""

    engine: TtsEngine
    voice: Voice
    engine_rtf: float
    mp3_rtf: float  # encoding the clip as MP3, in this process
    api_rtf: float = 0.0
    heard: tuple[Heard, ...] = ()

    @property
    def rank(self) -> tuple[float, float, float]:
        """Best first when sorted: the default voice's grammar accuracy, then word accuracy, then speed."""
        own = self.heard[0]
        return (-own.grammar_accuracy, -(own.word_accuracy or 0.0), self.engine_rtf)


def _pcm16k(wav: bytes) -> bytes:
    samples, rate = audio.decode(wav)
    return (np.clip(audio.resample_samples(samples, rate, RATE), -1, 1) * 32767).astype("<i2").tobytes()


def _edits(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions, deletions, insertions)."""
    row = list(range(len(hypothesis) + 1))
    for i, said in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, got in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (said != got))
    return row[-1]


def _free_decoder() -> tuple[Decoder | None, str]:
    """pocketsphinx with its bundled en-us language model and dictionary (no download), or why it will not load."""
    try:
        return Decoder(samprate=RATE, loglevel="FATAL"), ""
    except Exception as exc:  # the SWIG/Cython layer raises RuntimeError or ValueError for a missing model
        return None, f"{type(exc).__name__}: {exc}"


def _free_word_accuracy(decoder: Decoder, clips: list[tuple[str, bytes]]) -> float:
    """1 - WER over the whole set (edits summed over words summed), decoding each clip without a grammar."""
    edits = total = 0
    for sentence, wav in clips:
        decoder.start_utt()
        decoder.process_raw(_pcm16k(wav), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        said = words(hypothesis.hypstr if hypothesis is not None else "").split()
        reference = words(sentence).split()
        edits += _edits(reference, said)
        total += len(reference)
    return 1.0 - edits / total


def _intelligibility(voice: Voice, clips: list[tuple[str, bytes]], decoder: Decoder | None) -> Heard:
    """Grammar accuracy (each clip against the whole sentence set) and, when the decoder loaded, word accuracy."""
    exact = sum(heard(wav, SENTENCES) == sentence for sentence, wav in clips)
    free = _free_word_accuracy(decoder, clips) if decoder is not None else None
    return Heard(voice, exact / len(clips), free)


async def _direct(
    engine: TtsEngine, voice: Voice, sentences: list[str]
) -> tuple[list[float], list[float], list[tuple[str, bytes]]]:
    """Real-time factors of each sentence through the engine itself and of its MP3 encoding alone (part of what the
    API adds), and the clips for recognition."""
    await engine.synthesize(sentences[0], voice)  # warm-up: page cache, voice data
    factors: list[float] = []
    encoding: list[float] = []
    clips: list[tuple[str, bytes]] = []
    for sentence in sentences:
        started = time.perf_counter()
        spoken = await engine.synthesize(sentence, voice)
        factors.append((time.perf_counter() - started) / spoken.duration_s)
        clips.append((sentence, spoken.wav))
        started = time.perf_counter()
        await asyncio.to_thread(audio.to_mp3, spoken.wav)
        encoding.append((time.perf_counter() - started) / spoken.duration_s)
    return factors, encoding, clips


async def _through_api(http: httpx.AsyncClient, headers: dict[str, str], voice: Voice, sentences: list[str]) -> float:
    """Median real-time factor of `/tts/synthesize` (mp3) for the voice; the engine that spoke must be its own."""
    body = {"text": sentences[0], "voice": voice.id, "format": "mp3"}
    (await http.post(f"{TTS}/synthesize", json=body, headers=headers)).raise_for_status()  # warm-up
    factors = []
    for sentence in sentences:
        started = time.perf_counter()
        answer = await http.post(f"{TTS}/synthesize", json={**body, "text": sentence}, headers=headers)
        elapsed = time.perf_counter() - started
        answer.raise_for_status()
        assert answer.headers["X-TTS-Engine"] == voice.engine, answer.headers
        assert answer.content, "no audio"
        factors.append(elapsed / float(answer.headers["X-TTS-Duration"]))
    return statistics.median(factors)


def _two_voices(engine: TtsEngine) -> tuple[Voice, Voice]:
    """The engine's first voice and one of the other gender in the same language (else its second voice)."""
    voices = engine.voices()
    first = voices[0]
    other = next((v for v in voices if v.language == first.language and v.gender != first.gender), None)
    return first, other or voices[min(1, len(voices) - 1)]


async def _podcast_job(http: httpx.AsyncClient, headers: dict[str, str], engine: str | None, *,
                       topic: str = "small gardens", edit: bool = True) -> dict[str, Any]:  # fmt: skip
    """A short two-voice podcast made by the real job (POST /generation/podcast) on the live server, then (with
    ``edit``) one line re-spoken (PATCH): the job's result with ``edit_s``."""
    body = {"topic": topic, "length": "short", **({"engine": engine} if engine else {})}
    started = await http.post("/api/v1/agent/generation/podcast", headers=headers, json=body)
    started.raise_for_status()
    job_id = started.json()["id"]
    deadline = time.monotonic() + 900
    while (job := (await http.get(f"/api/v1/agent/generation/jobs/{job_id}", headers=headers)).json())["status"] in {
        "queued", "running"}:  # fmt: skip
        if time.monotonic() > deadline:
            raise SystemExit(f"the podcast job did not end: {job}")
        await asyncio.sleep(0.05)
    if job["status"] != "done":
        raise SystemExit(f"the podcast job {job['status']}: {job['error']}")
    if not edit:
        return dict(job["result"])
    edit_started = time.perf_counter()
    edited = await http.patch(f"/api/v1/agent/generation/podcasts/{job_id}/lines/3", headers=headers,
                              json={"text": "A pot of tea helps to pass the evening in the garden."})  # fmt: skip
    edited.raise_for_status()
    return {**job["result"], "edit_s": time.perf_counter() - edit_started}


def _podcast_script() -> list[Step]:
    """The outline and two chapters of five lines, as a model would answer them."""
    halves = [PODCAST[:5], PODCAST[5:]]
    steps = [Step(text=[json.dumps({"title": "Small gardens", "chapters": ["Planning", "Planting"]})])]
    for half in halves:
        lines = [{"text": line, "sources": []} for line in half]  # the hosts take turns
        steps.append(Step(text=[json.dumps({"lines": lines})]))
    return steps


async def run(sentences: list[str]) -> None:
    engines = installed_engines()
    usable: list[TtsEngine] = []
    for engine in engines:
        reason = await engine.available()
        if reason is None:
            usable.append(engine)
        else:
            print(f"{engine.name}: unavailable ({reason})")
    if not usable:
        raise SystemExit("no TTS engine can speak here: nothing to measure")

    figures: list[EngineFigures] = []
    clips_of: dict[str, list[tuple[str, bytes]]] = {}
    for engine in usable:
        voice = engine.voices()[0]
        factors, encoding, clips = await _direct(engine, voice, sentences)
        figures.append(EngineFigures(engine, voice, statistics.median(factors), statistics.median(encoding)))
        clips_of[engine.name] = clips

    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "data") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            headers = await signed_in(http)
            for measured in figures:
                measured.api_rtf = await _through_api(http, headers, measured.voice, sentences)

    decoder, why_not = await asyncio.to_thread(_free_decoder)
    for measured in figures:
        second = _two_voices(measured.engine)[1]
        second_clips = [(s, (await measured.engine.synthesize(s, second)).wav) for s in sentences]
        for voice, clips in ((measured.voice, clips_of[measured.engine.name]), (second, second_clips)):
            measured.heard += (await asyncio.to_thread(_intelligibility, voice, clips, decoder),)

    count = len(sentences)
    for measured in figures:
        name = f"{measured.engine.name} ({measured.voice.native})"
        print(f"{name}: engine real-time factor {measured.engine_rtf:.4f}x   "
              f"API real-time factor {measured.api_rtf:.4f}x (mp3)   "
              f"ratio API / engine {measured.api_rtf / measured.engine_rtf:.2f}   (median of {count} sentences; "
              f"mp3 encoding alone {measured.mp3_rtf:.4f}x)")  # fmt: skip
        for result in measured.heard:
            name = f"{measured.engine.name} ({result.voice.native})"
            print(f"{name}: grammar accuracy {result.grammar_accuracy:.0%} of {count} sentences heard exactly "
                  f"(grammar of all {len(SENTENCES)})")  # fmt: skip
            if result.word_accuracy is not None:
                print(f"{name}: free-decoding word accuracy {result.word_accuracy:.0%} (1 - WER, pocketsphinx's "
                      "en-us language model)")  # fmt: skip
            else:
                print(f"{name}: free-decoding word accuracy not measured: pocketsphinx's default language model "
                      f"does not load offline ({why_not})")  # fmt: skip

    best = min(figures, key=lambda measured: measured.rank).engine.name
    configured = Settings().tts.engines
    first_usable = next((name for name in configured if name in {engine.name for engine in usable}), None)
    verdict = "matches" if best == first_usable else "differs from"
    print(f"default by measure: {best} (accuracy, then speed, among {', '.join(e.name for e in usable)})")
    order = ", ".join(configured)
    print(f"configured order {order}: first that speaks here is {first_usable}; the measure {verdict} it")

    default = next(engine for engine in usable if engine.name == best)
    upstream = ScriptedUpstream().start()
    llm = {"providers": [{"name": "scripted", "base_url": upstream.base_url,
                          "models": [{"id": "scripted", "max_output_tokens": 1024}]}],
           "default_model": "scripted", "local": {"enabled": False}}  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "data",
                                                               extra_env={"AGENT_UI_LLM": json.dumps(llm)}) as server:  # fmt: skip
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
                headers = await signed_in(http)
                upstream.push(*_podcast_script())
                made = await _podcast_job(http, headers, best)
    finally:
        upstream.stop()
    duration = made["duration_s"]
    audio_s = made["stage_s"]["voices"] + made["stage_s"]["mixing"]
    offline = not default.online
    target = f"target <= {PODCAST_TARGET_RTF}x offline" + ("" if offline else ", not binding: an online engine")
    verdict = ("meets" if audio_s / duration <= PODCAST_TARGET_RTF else "misses") if offline else "n/a"
    print(
        f"podcast audio stage (the real job: {made['lines']} lines, two {best} voices, {duration:.1f} s of audio; "
        f"the script from a scripted model): real-time factor {audio_s / duration:.4f}x ({verdict}; {target}); "
        f"voices {made['stage_s']['voices']:.2f} s, mix + normalise + mp3 + flac {made['stage_s']['mixing']:.2f} s"
    )
    print(f"podcast line re-spoken (PATCH .../lines/3, spliced into the master, mp3 encoded again): "
          f"{made['edit_s'] * 1000:.0f} ms")  # fmt: skip


async def _local_podcast() -> None:
    """A whole short podcast with the embedded local model writing the script (default settings, as shipped)."""
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "data", startup_timeout_s=120) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=600) as http:
            headers = await signed_in(http)
            started = time.perf_counter()
            made = await _podcast_job(http, headers, engine=None, topic="why the sea is salty", edit=False)
            wall = time.perf_counter() - started
    print(
        f"podcast with the local model (topic, short: 2 chapters of 5 lines asked): {made['lines']} lines kept, "
        f"{made['duration_s']:.1f} s of audio; script {made['stage_s']['script']:.1f} s, whole job {wall:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few samples: check that the benchmark runs")
    quick = parser.parse_known_args()[0].quick
    asyncio.run(run(SENTENCES[:QUICK_SENTENCES] if quick else SENTENCES))
    if quick:
        print("podcast with the local model: not run with --quick (it loads the model: about 2 minutes)")
    else:
        asyncio.run(_local_podcast())


if __name__ == "__main__":
    main()
