"""Hear what a clip says: pocketsphinx in grammar (JSGF) mode, choosing among the sentences a test expects.

A grammar of a few fixed sentences makes recognition exact for synthetic speech (espeak-ng, flite), and it still
rejects silence and noise, so a test can assert the words were spoken rather than that some sound came out.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from pocketsphinx import Decoder

from services.tts import audio

RATE = 16000  # the bundled en-us acoustic model is trained on 16 kHz audio


def words(sentence: str) -> str:
    """The sentence as the recogniser spells it: lower case words, no punctuation."""
    return " ".join(re.findall(r"[a-z']+", sentence.lower()))


@lru_cache(maxsize=8)
def _decoder(sentences: tuple[str, ...]) -> Decoder:
    rules = " | ".join(f"( {words(sentence)} )" for sentence in sentences)
    decoder = Decoder(samprate=RATE, loglevel="FATAL")
    decoder.add_jsgf_string("sentences", f"#JSGF V1.0;\ngrammar sentences;\npublic <sentence> = {rules} ;\n")
    decoder.activate_search("sentences")
    return decoder


def heard(wav: bytes, sentences: list[str]) -> str:
    """Which of ``sentences`` the clip says ("" when none: silence, noise, or other words)."""
    samples, rate = audio.decode(wav)
    pcm = (np.clip(audio.resample_samples(samples, rate, RATE), -1, 1) * 32767).astype("<i2").tobytes()
    decoder = _decoder(tuple(sentences))
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    said = hypothesis.hypstr if hypothesis is not None else ""
    return next((sentence for sentence in sentences if words(sentence) == said), "")
