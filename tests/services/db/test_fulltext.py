"""The full-text seam on SQLite (FTS5) and PostgreSQL (tsvector): words as prefixes, rank, owners, scopes,
replacing and deleting, and user input that never breaks a query."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.db import Database
from services.db.fulltext import MAX_TERMS, FullTextIndex, parse_query

# Whatever a user types into a search box: quotes, operators of both query languages, brackets, NUL.
MALFORMED = [
    '"foo', "a AND (", "*", "foo*", "foo:*", "NEAR(foo", "foo OR", "-foo", "^foo", "'", "\\", "\x00foo",
    "foo & | !bar", "(((", "))", "foo<->bar", "col:foo", "{foo}", "!", "", "   ", "foo\"bar'baz", "%_",
]  # fmt: skip


def index(db: Database, scope: str = "test") -> FullTextIndex:
    return FullTextIndex(backend=db.backend, scope=scope)


async def put(
    db: Database, fulltext: FullTextIndex, key: str, text: str, owner: str = "usr_a", group: str = "g1"
) -> None:
    async with db.transaction() as session:
        await fulltext.put(session, key=key, text=text, owner=owner, group=group)


async def keys(db: Database, fulltext: FullTextIndex, query: str, owner: str | None = "usr_a") -> list[str]:
    async with db.transaction(readonly=True) as session:
        return [hit.key for hit in await fulltext.search(session, query, owner=owner)]


def test_a_query_is_its_words() -> None:
    assert parse_query('"Foo') == ("foo",)
    assert parse_query("a AND (") == ("a", "and")
    assert parse_query("*") == ()
    assert parse_query("snake_case foo:* foo") == ("snake", "case", "foo")
    assert parse_query("Müller straße") == ("müller", "straße")
    assert len(parse_query(" ".join(f"w{i}" for i in range(50)))) == MAX_TERMS


async def test_words_match_as_prefixes_and_all_must_match(db: Database) -> None:
    fulltext = index(db)
    await put(db, fulltext, "k1", "Python programming for beginners")
    await put(db, fulltext, "k2", "Java programming, the hard way")
    assert await keys(db, fulltext, "pyth") == ["k1"]
    assert await keys(db, fulltext, "PYTHON") == ["k1"]
    assert sorted(await keys(db, fulltext, "progr")) == ["k1", "k2"]
    assert await keys(db, fulltext, "prog jav") == ["k2"]
    assert await keys(db, fulltext, "python java") == []
    assert await keys(db, fulltext, "ython") == []  # a prefix, not any substring


async def test_better_matches_rank_first(db: Database) -> None:
    fulltext = index(db)
    await put(db, fulltext, "once", "apple banana cherry date elderberry fig grape honeydew kiwi lemon")
    await put(db, fulltext, "thrice", "apple apple apple banana")
    await put(db, fulltext, "none", "banana cherry")
    async with db.transaction(readonly=True) as session:
        hits = await fulltext.search(session, "apple", owner="usr_a")
    assert [hit.key for hit in hits] == ["thrice", "once"]
    assert hits[0].rank > hits[1].rank
    assert hits[0].group == "g1"


async def test_put_replaces_and_delete_removes(db: Database) -> None:
    fulltext = index(db)
    await put(db, fulltext, "k1", "first draft", group="g1")
    await put(db, fulltext, "k1", "second version", group="g1")
    await put(db, fulltext, "k2", "second opinion", group="g2")
    await put(db, fulltext, "k3", "second thoughts", group="g2")
    assert await keys(db, fulltext, "draft") == []
    assert sorted(await keys(db, fulltext, "second")) == ["k1", "k2", "k3"]
    async with db.transaction() as session:
        await fulltext.delete(session, ["k1"])
    assert sorted(await keys(db, fulltext, "second")) == ["k2", "k3"]
    async with db.transaction() as session:
        await fulltext.delete_group(session, "g2")
    assert await keys(db, fulltext, "second") == []
    await put(db, fulltext, "k4", "something")
    await put(db, fulltext, "k4", "   ")  # an empty text takes the key out
    assert await keys(db, fulltext, "something") == []


async def test_owners_and_scopes_never_see_each_other(db: Database) -> None:
    chats, documents = index(db, "chat"), index(db, "docs")
    await put(db, chats, "mine", "secret plans", owner="usr_a")
    await put(db, chats, "theirs", "secret recipes", owner="usr_b")
    await put(db, documents, "mine", "secret document", owner="usr_a")
    assert await keys(db, chats, "secret", owner="usr_a") == ["mine"]
    assert await keys(db, chats, "recipes", owner="usr_a") == []
    assert await keys(db, chats, "secret", owner="usr_b") == ["theirs"]
    assert sorted(await keys(db, chats, "secret", owner=None)) == ["mine", "theirs"]
    assert await keys(db, documents, "plans", owner="usr_a") == []


@pytest.mark.parametrize("query", MALFORMED)
async def test_malformed_queries_give_results_or_nothing(db: Database, query: str) -> None:
    fulltext = index(db)
    text = "foo bar baz and more"
    await put(db, fulltext, "k1", text)
    terms = parse_query(query)
    found = bool(terms) and all(any(word.startswith(term) for word in text.split()) for term in terms)
    assert await keys(db, fulltext, query) == (["k1"] if found else [])


async def test_text_with_odd_characters_is_indexed(db: Database) -> None:
    fulltext = index(db)
    await put(db, fulltext, "k1", "Grüße aus Müller's café\x00 — «naïve» snake_case 日本語 x" + " filler" * 20_000)
    assert await keys(db, fulltext, "müll") == ["k1"]
    assert await keys(db, fulltext, "snake case") == ["k1"]
    assert await keys(db, fulltext, "grüße") == ["k1"]
    assert await keys(db, fulltext, "日本語") == ["k1"]
    for query in ("naïve", "foo-bar", "x.y.z", "3.14", "a@b.com", "İstanbul", "ﬁle", "٣", "e\u0301", "🙂 x"):
        assert await keys(db, fulltext, query) in ([], ["k1"]), query


async def test_any_word_searches_match_whole_words_and_rank_rare_words_first(db: Database) -> None:
    fulltext = index(db)
    await put(db, fulltext, "both", "the heron ledger records copper bells")
    await put(db, fulltext, "one", "a heron stood in the reeds")
    await put(db, fulltext, "plural", "ledgers of the harbour")
    async with db.transaction(readonly=True) as session:
        hits = await fulltext.search(session, "what does the heron ledger record", owner="usr_a", any_term=True)
    assert [hit.key for hit in hits] == ["both", "one"]  # "ledgers" is another word; "the" and "what" are left out


async def test_in_a_large_index_words_most_entries_hold_are_left_out_of_any_word_searches(db: Database) -> None:
    """With "common" in every entry, asking for it beside a rare word finds the rare word's entries only, instead of
    every entry (SQLite counts words in its vocabulary table, PostgreSQL reads ANALYZE's statistics); a small index
    keeps every word."""
    fulltext = index(db)
    rows = [(f"k{i}", f"common filler text number{i}", "usr_a", "g1") for i in range(2500)]
    rows += [("rare1", "common lantern keeper", "usr_a", "g1"), ("rare2", "lantern room", "usr_a", "g1")]
    async with db.transaction() as session:
        await fulltext.add_many(session, rows)
        if db.backend == "postgresql":
            await session.exec(sa.text("ANALYZE fulltext_entries"))  # what autovacuum does after such a load
    async with db.transaction(readonly=True) as session:
        hits = await fulltext.search(session, "common lantern", owner="usr_a", any_term=True, limit=50)
        only_common = await fulltext.search(session, "common filler", owner="usr_a", any_term=True, limit=50)
    assert sorted(hit.key for hit in hits) == ["rare1", "rare2"]
    assert len(only_common) == 50  # a question of common words only is asked whole
    if db.backend == "postgresql":
        return  # its statistics describe the large index until autovacuum runs again
    small = index(db, scope="small")
    async with db.transaction() as session:
        await fulltext.delete_group(session, "g1")
        await small.add_many(session, [("a", "common lantern", "usr_a", "g"), ("b", "common wick", "usr_a", "g")])
    async with db.transaction(readonly=True) as session:
        assert len(await small.search(session, "common lantern", owner="usr_a", any_term=True)) == 2
