"""The lexical ranker: BM25 over passages and over whole pages (SQLite FTS5, in the store).

The user's words reach FTS5 only as quoted terms (`Query.match`), never as syntax.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable

from . import store
from .query import Query

# Above this many passages (where FAISS also turns approximate), BM25 skips query terms found
# in more than COMMON_SHARE of the passages: their IDF is close to zero, so they barely move a
# score, yet ranking every passage that holds one is what makes a large index slow. For the
# same reason, hybrid search there leaves out whole-page BM25 (`page_scores`).
LARGE_INDEX = 50_000
COMMON_SHARE = 0.25
LOOKUP_SHARE = 0.1
LOOKUP_FLOOR = 20  # ...and in more than this many: in a small index every word is in 10%


def selective(db: sqlite3.Connection, words: tuple[str, ...], total: int) -> tuple[str, ...]:
    """The words whose stem is in at most COMMON_SHARE of the passages (all, if none is)."""
    counts = store.passages_holding(db, words)
    kept = tuple(w for w, count in zip(words, counts, strict=True)
                 if count <= COMMON_SHARE * total)
    return kept or words


def word_counts(db: sqlite3.Connection, query: Query) -> list[int]:
    """How many passages hold each word of the query: read once a search, for `coverage` and
    `pages_holding_all`."""
    return store.passages_holding(db, query.terms)


def _idf(counts: list[int], total: int) -> list[tuple[float, int]]:
    """Each query word's IDF with the number of passages holding it (`word_counts`); a word no
    passage holds counts as rarer than any that one does (a document count of 0.5)."""
    return [(math.log(1 + max(total, 1) / (count or 0.5)), count) for count in counts]


def coverage(counts: list[int], total: int) -> float:
    """The share of the query the notes hold: its words' IDF, summed over those found in some
    passage, over the sum for all its words. A word no passage holds counts as rarer than
    any that one does (a document count of 0.5), so a question in a learner's own words,
    half of them absent from the notes, covers well under half.

    Lexical evidence can only rest on the words found; `rank.rank_pages` weighs it by this.
    Counted over the whole index, with a course filter too: the words a learner uses are as
    foreign to the notes either way.
    """
    weights = _idf(counts, total)
    whole = sum(weight for weight, _ in weights)
    return sum(weight for weight, count in weights if count) / whole if weights else 1.0


def printed_share(db: sqlite3.Connection, query: Query, ids: list[int], total: int
                  ) -> dict[int, float]:
    """For each of these passages, the share of the query (its words' IDF) that it holds."""
    weights = _idf(word_counts(db, query), total)
    whole = sum(weight for weight, _ in weights) or 1.0
    share = dict.fromkeys(ids, 0.0)
    for word, (weight, count) in zip(query.terms, weights, strict=True):
        if count:
            for i in store.passages_matching(db, query.match((word,)), ids):
                share[i] += weight / whole
    return share


def search(db: sqlite3.Connection, query: Query, limit: int, doc_ids: set[int] | None = None,
           total: int = 0) -> list[tuple[int, float]]:
    """Passage ids with their BM25 score (higher is better), best first.

    `doc_ids` restricts the search to these documents (a course filter). `total` is the number
    of passages in the index: above LARGE_INDEX, common terms are left out (see `selective`).
    """
    words = query.terms
    if total > LARGE_INDEX:
        words = selective(db, words, total)
    match = query.match(words)
    return [] if match is None else store.bm25_passages(db, match, limit, doc_ids)


def page_scores(db: sqlite3.Connection, query: Query, pages: Iterable[tuple[int, int]]
                ) -> dict[tuple[int, int], float]:
    """BM25 of whole pages, prose and slide text as one, for these (document, page) pairs.

    Pages without any query word are left out (their BM25 is 0).
    """
    return _bm25_of(db, query.match(), set(pages))


def pages_holding_all(db: sqlite3.Connection, query: Query, spans: Iterable[tuple[int, int, int]],
                      counts: list[int], total: int) -> set[tuple[int, int]]:
    """The pages of these (document, first page, last page) spans that hold every word of the
    query, in their prose or their slides' text; none when a word of it is common in the
    notes (in more than LOOKUP_SHARE of the passages and LOOKUP_FLOOR passages): "the", or
    "p" and "value" for a p-value, are held by pages that say nothing about what was asked.
    None either when a word is one letter: "C++" or "R" asks about a language, and the page
    holding a variable `c` does not answer it."""
    common = max(LOOKUP_SHARE * total, LOOKUP_FLOOR)
    if any(count > common for count in counts) or any(len(t) < 2 for t in query.terms):
        return set()
    wanted = {(doc, n) for doc, first, last in spans for n in range(first, last + 1)}
    return set(_bm25_of(db, query.match(every=True), wanted))


def _bm25_of(db: sqlite3.Connection, match: str | None, wanted: set[tuple[int, int]]
             ) -> dict[tuple[int, int], float]:
    """BM25 of the `wanted` (document, page) pairs that match; one pass over the matches,
    filtered here: handing FTS5 the list of rowids was twenty times slower."""
    if match is None or not wanted:
        return {}
    return {key: score for key, score in store.bm25_pages(db, match) if key in wanted}
