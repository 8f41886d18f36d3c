"""What a podcast keeps of the model's lines (names, citation marks and markup out, cut lines ending at a sentence)
and how an edited line is spliced into the master (the lines after it move, the ones before stay)."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from services.tts import audio
from services.tts.podcast import (
    LINE_CHARS,
    _chapters,
    _excerpt,
    _mix,
    _repeats,
    _splice,
    _spoken_text,
    _whole_sentences,
    _without_speaker,
)


def test_a_line_loses_copied_names_marks_and_markup_and_keeps_its_citations() -> None:
    assert _without_speaker("Sam: Alex: Salt comes from rocks.", ["Alex", "Sam"]) == "Salt comes from rocks."
    assert _without_speaker("Alexander: hello", ["Alex"]) == "Alexander: hello"  # only whole names
    assert _spoken_text("**Rivers** carry salt [2] to the sea [9].", 3) == ("Rivers carry salt to the sea.", [2])
    first = "Salt comes from the rocks that rain wears down, and rivers carry it to the sea."
    assert _whole_sentences((first + " Then it stays there and builds up over" + " ages" * 40)[:LINE_CHARS]) == first
    early = "Salt. " + "And then it goes on and on" * 10  # too little before the only full stop: kept as written
    assert _whole_sentences(early[:LINE_CHARS]) == early[:LINE_CHARS]
    assert _whole_sentences("Short and whole") == "Short and whole"


def test_a_line_said_again_nearly_word_for_word_is_a_repeat() -> None:
    said = ["Salinity helps regulate the temperature of water, which affects marine life."]
    assert _repeats("Salinity also helps regulate the temperature of water, which affects marine life.", said)
    assert not _repeats("Rivers wash salt out of rocks and carry it down to the sea.", said)


def tone(seconds: float, rate: int = 24000) -> np.ndarray:
    return (0.3 * np.sin(np.arange(round(seconds * rate)) * 0.05)).astype(np.float32)


def test_an_edited_line_is_spliced_in_and_the_later_lines_move(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = [tone(1.0), tone(2.0), tone(0.5)]
    master, spans = _mix(lines, [0, 0, 1])
    assert spans[1][0] == 1.45 and spans[2][0] == spans[1][1] + 1.2  # a turn's pause, then a chapter's
    rows = [
        {"index": i, "chapter": c, "start_s": a, "end_s": b}
        for i, (c, (a, b)) in enumerate(zip([0, 0, 1], spans, strict=True))
    ]
    path = tmp_path / "master.flac"
    samples, rate = audio.decode(master)
    sf.write(path, samples, rate, format="FLAC", subtype="PCM_16")
    spliced, moved = _splice(path, rows, 1, tone(3.0))
    assert moved[0] == spans[0] and moved[1] == (spans[1][0], spans[1][0] + 3.0)
    assert abs(moved[2][0] - (spans[2][0] + 1.0)) < 1e-6 and abs(moved[2][1] - (spans[2][1] + 1.0)) < 1e-6
    info = sf.info(io.BytesIO(spliced))
    assert abs(info.duration - moved[2][1]) < 1e-3
    joined, _ = audio.decode(spliced)
    gap = joined[round((moved[1][1] + 0.05) * rate) : round((moved[2][0] - 0.05) * rate)]
    assert len(gap) and float(np.abs(gap).max()) < 1e-3  # the chapter pause is still silence
    marks = _chapters(
        {0: "One", 1: "Two", 2: "Empty"}, [dict(r, start_s=a, end_s=b) for r, (a, b) in zip(rows, moved, strict=True)]
    )
    assert [(m["title"], m["first_line"]) for m in marks] == [("One", 0), ("Two", 2)]


def test_long_material_is_excerpted_evenly_from_start_to_end() -> None:
    text = "\n\n".join(f"Paragraph {n} " + "word " * 100 for n in range(100))
    excerpt = _excerpt(text, 6000)
    numbers = [int(part.split()[1]) for part in excerpt.split("\n\n")]
    assert len(excerpt) <= 6000 and numbers[0] == 0 and numbers[-1] >= 80 and numbers == sorted(numbers)
    assert _excerpt("short", 6000) == "short"
