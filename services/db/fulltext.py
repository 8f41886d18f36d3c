"""Full-text search on both databases: texts kept under a key, found by words, best match first.

One shared table, ``fulltext_entries`` (scope, key, owner, group, body), holds every index; a scope keeps one
user of it apart from another (chat messages and titles now, document chunks next). SQLite searches it through
an FTS5 table over the same rows (external content, kept in step by triggers; ranked by bm25), PostgreSQL
through a stored ``tsvector`` column with a GIN index (ranked by ``ts_rank``). Both tokenize the same way: no
stemming, case-folded words, every word of a query matched as a prefix ("pyth" finds "python").

User input never reaches either query language: :func:`parse_query` keeps only its words, so quotes, brackets,
operators and ``*`` can never make a query fail. The caller owns the transaction; every method takes its
session. The tables are made by migration 0006 and are not SQLModel models (the virtual table and the
``tsvector`` column are backend-specific): :func:`is_fulltext_table` tells schema comparison to leave them out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

TABLE = "fulltext_entries"
FTS_TABLE = "fulltext_fts"  # SQLite only: the FTS5 index over TABLE's body
VOCAB_TABLE = "fulltext_vocab"  # SQLite only: how many entries hold each word (fts5vocab)
COMMON_SHARE = 0.25  # any-word searches leave out words more than this share of entries hold
PRUNE_FROM = 2000  # entries in the index before common words are left out
STATS_TTL_S = 300.0  # PostgreSQL: how long the commonest words, read from the planner's statistics, are kept
TS_CONFIG = "simple"  # PostgreSQL: no stemming and no stop words, like SQLite's unicode61 tokenizer
MAX_TERMS = 12
MAX_TERM_CHARS = 64
# A tsvector holds at most 1 MiB; texts longer than this are indexed by their beginning.
MAX_BODY_CHARS = 100_000
_WORD = re.compile(r"[^\W_]+")
# Left out of any-word queries: they match nearly every passage and only slow the ranking down.
_COMMON = (
    "a an and are as at be been but by can could do does did for from had has have how i if in into is it its "
    "me my no not of on or our she he so than that the their them then there these they this to was we were what "
    "when where which while who whom why will with would you your"
)
STOP_WORDS = frozenset(_COMMON.split(" "))

entries = sa.Table(
    TABLE,
    sa.MetaData(),
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(32), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("grp", sa.String(64), nullable=True),
    sa.Column("body", sa.Text(), nullable=False),
    sa.UniqueConstraint("scope", "key", name="uq_fulltext_entries_scope_key"),
)
_fts = sa.table(FTS_TABLE, sa.column("rowid"))


def _body(text: str) -> str:
    """What is indexed of a text: no NUL (PostgreSQL refuses it), at most MAX_BODY_CHARS, trimmed."""
    return text.replace("\x00", " ")[:MAX_BODY_CHARS].strip()


def is_fulltext_table(name: str | None) -> bool:
    """The full-text tables (and SQLite's FTS5 shadow tables): not in the models' metadata, on purpose."""
    return bool(name) and str(name).startswith("fulltext_")


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """For alembic's ``include_name``: schema comparison leaves the full-text tables alone."""
    return not (type_ == "table" and is_fulltext_table(name))


def any_terms(text: str) -> tuple[str, ...]:
    """A query's words for an any-word search: without common English words (all of them if nothing is left)."""
    terms = parse_query(text)
    return tuple(term for term in terms if term not in STOP_WORDS) or terms


def parse_query(text: str) -> tuple[str, ...]:
    """The words of a user's query, lowercased, at most :data:`MAX_TERMS` of them; everything else is dropped.

    ``"foo``, ``a AND (`` and ``*`` are just the words they contain (``foo``; ``a``, ``and``; none)."""
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        word = word[:MAX_TERM_CHARS]
        if word not in terms:
            terms.append(word)
        if len(terms) == MAX_TERMS:
            break
    return tuple(terms)


@dataclass(frozen=True)
class Hit:
    key: str
    group: str | None
    rank: float  # higher is better; comparable within one query only


class FullTextIndex:
    """One scope of the full-text table: put a key's text, delete keys or a group, find keys by words.

    ``owner`` (a user id, or None for shared entries) filters what a search may see; ``group`` gathers keys
    that are deleted or found together (a chat session's title and messages, a document's chunks).
    """

    def __init__(self, *, backend: str, scope: str) -> None:
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"no full-text search on {backend}")
        self._backend = backend
        self._scope = scope
        # PostgreSQL: the share of entries holding each of the commonest words, from the planner's statistics,
        # read again after STATS_TTL_S (when it was read, the shares).
        self._common: tuple[float, dict[str, float]] | None = None

    async def put(
        self, session: AsyncSession, *, key: str, text: str, owner: str | None, group: str | None = None
    ) -> None:
        """Index ``text`` under ``key``, replacing what the key held; an empty text removes the key."""
        body = _body(text)
        if not body:
            await self.delete(session, [key])
            return
        values = {"scope": self._scope, "key": key, "owner": owner, "grp": group, "body": body}
        dialect: Any = sqlite if self._backend == "sqlite" else postgresql
        insert = dialect.insert(entries).values(**values)
        update = {"owner": insert.excluded.owner, "grp": insert.excluded.grp, "body": insert.excluded.body}
        await session.exec(insert.on_conflict_do_update(index_elements=["scope", "key"], set_=update))

    async def add_many(self, session: AsyncSession, rows: Iterable[tuple[str, str, str | None, str | None]]) -> None:
        """Index new keys in one statement: ``(key, text, owner, group)`` each (keys not indexed before)."""
        values = [{"scope": self._scope, "key": key, "owner": owner, "grp": group,
                   "body": _body(text)}
                  for key, text, owner, group in rows]  # fmt: skip
        values = [value for value in values if value["body"]]
        if values:
            await session.exec(sa.insert(entries), params=values)

    async def delete(self, session: AsyncSession, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            await session.exec(
                sa.delete(entries).where(entries.c.scope == self._scope, entries.c.key.in_(keys))
            )  # fmt: skip

    async def delete_group(self, session: AsyncSession, group: str) -> None:
        await session.exec(sa.delete(entries).where(entries.c.scope == self._scope, entries.c.grp == group))

    def matches(
        self, query: str, *, owner: str | None, any_term: bool = False, groups: Iterable[str] | None = None,
        terms: tuple[str, ...] | None = None,
    ) -> sa.Select[tuple[str, str | None, float]]:
        """The entries matching ``query`` as (key, grp, rank) rows, best first: to run, or to use as a subquery.
        A query without words matches nothing.

        By default an entry must hold every word (a title search). ``any_term`` ranks entries holding any of the
        words, common English words left out (a question asked of documents: "how do I open a file"), where
        bm25 weighs rare words over common ones. ``groups`` keeps only entries of those groups."""
        if terms is None:
            terms = any_terms(query) if any_term else parse_query(query)
        joiner = " OR " if any_term else " "
        if self._backend == "sqlite":
            fts: Any = sa.literal_column(FTS_TABLE)
            rank: Any = (-sa.func.bm25(fts)).label("rank")
            statement = sa.select(entries.c.key, entries.c.grp, rank).select_from(
                _fts.join(entries, entries.c.id == _fts.c.rowid)
            )
            # Any-word: whole words (a prefix of every word merges many word lists: 30% slower at 100k entries,
            # for a recall@5 of 0.630 instead of 0.622); every word: each as a prefix, as people type.
            suffix = "" if any_term else "*"
            condition: Any = fts.op("MATCH")(joiner.join(f'"{term}"{suffix}' for term in terms))
        else:
            operator = " | " if any_term else " & "
            # Inline, not a parameter: with a parameter, a prepared statement's generic plan evaluates to_tsquery
            # for every row (2.5× slower at 100k entries). Safe: parse_query keeps letters and digits only.
            suffix = "" if any_term else ":*"
            expression = operator.join(f"{term}{suffix}" for term in terms if term.isalnum())
            tsquery: Any = sa.literal_column(f"to_tsquery('{TS_CONFIG}'::regconfig, '{expression}')")
            tsv: Any = sa.literal_column(f"{TABLE}.tsv")
            rank = sa.func.ts_rank(tsv, tsquery).label("rank")
            statement = sa.select(entries.c.key, entries.c.grp, rank)
            condition = tsv.op("@@")(tsquery)
        if not terms:
            condition = sa.false()
        statement = statement.where(condition, entries.c.scope == self._scope)
        if owner is not None:
            statement = statement.where(entries.c.owner == owner)
        if groups is not None:
            statement = statement.where(entries.c.grp.in_(list(groups)))
        return statement.order_by(sa.desc("rank"), entries.c.key)

    async def _uncommon(self, session: AsyncSession, terms: tuple[str, ...]) -> tuple[str, ...]:
        """In a large index: the words that at most :data:`COMMON_SHARE` of all entries hold (all of them when none
        is left); SQLite counts them in its vocabulary table, PostgreSQL reads the planner's statistics. A commoner
        word matches up to half the index, so it is ranked in every row it matches, while it barely moves the
        ranking (its inverse document frequency is low)."""
        if len(terms) < 2:
            return terms
        if self._backend == "postgresql":
            shares = await self._common_shares(session)
            return tuple(term for term in terms if shares.get(term, 0.0) <= COMMON_SHARE) or terms
        connection = await session.connection()
        total = (await connection.execute(sa.select(sa.func.count()).select_from(entries))).scalar_one()
        if total < PRUNE_FROM:  # small indexes are fast anyway, and there a word all entries hold may be the point
            return terms
        vocab = sa.table(VOCAB_TABLE, sa.column("term"), sa.column("doc"))
        found = await connection.execute(sa.select(vocab.c.term, vocab.c.doc).where(vocab.c.term.in_(terms)))
        counts = {str(term): int(doc) for term, doc in found.all()}
        kept = tuple(term for term in terms if 0 < counts.get(term, 0) <= COMMON_SHARE * total)
        return kept or terms  # a question of common words only is asked whole

    async def _common_shares(self, session: AsyncSession) -> dict[str, float]:
        """PostgreSQL: the commonest words of the index and the share of entries holding each, as ANALYZE (run by
        autovacuum) keeps them in ``pg_stats``; nothing for an index under :data:`PRUNE_FROM` entries."""
        now = time.monotonic()
        if self._common is not None and now - self._common[0] < STATS_TTL_S:
            return self._common[1]
        connection = await session.connection()
        found = (await connection.execute(sa.text(
            "SELECT c.reltuples, s.most_common_elems::text::text[], s.most_common_elem_freqs FROM pg_class c "
            "LEFT JOIN pg_stats s ON s.schemaname = current_schema() AND s.tablename = :table AND s.attname = 'tsv' "
            "WHERE c.oid = to_regclass(:table)"
        ), {"table": TABLE})).first()  # fmt: skip
        shares: dict[str, float] = {}
        if found is not None and (found[0] or 0) >= PRUNE_FROM and found[1] and found[2]:
            shares = {str(word): float(share) for word, share in zip(found[1], found[2], strict=False)}
        self._common = (now, shares)
        return shares

    def matching_groups(self, query: str, *, owner: str | None) -> sa.Select[tuple[str | None]]:
        """The groups with at least one entry matching ``query``, for ``column.in_(...)``."""
        return sa.select(self.matches(query, owner=owner).order_by(None).subquery().c.grp).distinct()

    async def search(
        self, session: AsyncSession, query: str, *, owner: str | None, limit: int = 50, any_term: bool = False,
        groups: Iterable[str] | None = None,
    ) -> list[Hit]:
        """The best ``limit`` entries for ``query``, best first (see :meth:`matches`)."""
        connection = await session.connection()
        terms = await self._uncommon(session, any_terms(query)) if any_term else None
        statement = self.matches(query, owner=owner, any_term=any_term, groups=groups, terms=terms).limit(limit)
        rows = (await connection.execute(statement)).all()
        return [Hit(key=row.key, group=row.grp, rank=float(row.rank)) for row in rows]
