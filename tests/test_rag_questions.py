"""The RAG benchmark's question set is well formed: enough questions, over pages that exist, each labelled with a
passage found exactly once in the page's extracted text (so a hit is unambiguous)."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.rag_questions import DocsMissingError, Question, html_root, load_questions, normalise, page_text


@pytest.fixture(scope="module")
def questions() -> list[Question]:
    return load_questions()


def test_enough_questions_with_unique_ids_over_many_pages(questions: list[Question]) -> None:
    assert len(questions) >= 100
    ids = Counter(question.id for question in questions)
    assert [id_ for id_, count in ids.items() if count > 1] == []
    assert len({question.question for question in questions}) == len(questions)
    assert len({question.doc for question in questions}) >= 25
    for question in questions:
        assert question.question.strip() and question.answer.strip(), question.id
        assert 5 <= len(question.answer.split()) <= 25, question.id


def test_every_answer_appears_once_in_its_page(questions: list[Question]) -> None:
    try:
        root = html_root()
    except DocsMissingError as error:
        pytest.fail(f"{error} (the RAG benchmark's question set needs it)")
    texts: dict[str, str] = {}
    problems: list[str] = []
    for question in questions:
        if question.doc not in texts:
            if not (root / question.doc).is_file():
                problems.append(f"{question.id}: {question.doc} does not exist under {root}")
                continue
            texts[question.doc] = normalise(page_text(question.doc))
        count = texts[question.doc].count(normalise(question.answer))
        if count != 1:
            problems.append(f"{question.id}: answer found {count} times in {question.doc}: {question.answer!r}")
    assert problems == [], "\n".join(problems)
