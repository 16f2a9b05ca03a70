"""BM25 over passages with SQLite FTS5, and the query text FTS5 is given.

The user's words are never passed to FTS5 as syntax: each becomes a quoted term, so quotes,
stars, minus signs, colons, parentheses, NEAR and AND are just text.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable

from .textnorm import normalise

_TERM = re.compile(r"[^\W_]+")
STOPWORDS = frozenset("""
a an and are as at be but by can do does did for from had has have how i if in into is it its
me my of on or our so than that the their them then there these they this to was we were what
when where which who why will with would you your should could about get just more most not
also very much many one all any each other some such only own same too s t use used using
""".split())


# Above this many passages (where FAISS also turns approximate), BM25 skips query terms found
# in more than COMMON_SHARE of the passages: their IDF is close to zero, so they barely move a
# score, yet ranking every passage that holds one is what makes a large index slow. For the
# same reason, hybrid search there leaves out whole-page BM25 (`page_scores`).
LARGE_INDEX = 50_000
COMMON_SHARE = 0.25


def selective(db: sqlite3.Connection, words: list[str], total: int) -> list[str]:
    """The words whose stem is in at most COMMON_SHARE of the passages (all, if none is).

    The stems come from FTS5's own tokenizer (a scratch table in the connection's temp
    schema), so they are exactly the terms the index holds.
    """
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms USING fts5("
               "t, tokenize='porter unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_vocab USING fts5vocab("
               "temp, query_terms, instance)")
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunk_vocab USING fts5vocab("
               "main, chunks_fts, row)")
    db.execute("DELETE FROM temp.query_terms")
    db.executemany("INSERT INTO temp.query_terms (rowid, t) VALUES (?, ?)",
                   list(enumerate(words)))
    stems = db.execute("SELECT doc, term FROM temp.query_vocab").fetchall()
    common = set()
    for position, stem in stems:
        row = db.execute("SELECT doc FROM temp.chunk_vocab WHERE term = ?", (stem,)).fetchone()
        if row and row[0] > COMMON_SHARE * total:
            common.add(position)
    kept = [w for n, w in enumerate(words) if n not in common]
    return kept or words


def terms(query: str) -> list[str]:
    """The distinct content words of a query, lower-cased.

    Stopwords go, unless nothing else is left ("to be or not to be").
    """
    words = [w.lower() for w in _TERM.findall(normalise(query))]
    content = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(content))


def search(db: sqlite3.Connection, query: str, limit: int, doc_ids: set[int] | None = None,
           total: int = 0) -> list[tuple[int, float]]:
    """Passage ids with their BM25 score (higher is better), best first.

    `doc_ids` restricts the search to these documents (a course filter). `total` is the number
    of passages in the index: above LARGE_INDEX, common terms are left out (see `selective`).
    """
    words = terms(query)
    if total > LARGE_INDEX:
        words = selective(db, words, total)
    match = _match(words)
    if match is None:
        return []
    only = ""
    if doc_ids is not None:
        only = (" AND rowid IN (SELECT id FROM chunks WHERE doc_id IN ("
                + ",".join(str(int(d)) for d in doc_ids) + "))")
    rows = db.execute(
        "SELECT rowid, -bm25(chunks_fts, 1.0, 0.5) FROM chunks_fts WHERE chunks_fts MATCH ?"
        f"{only} ORDER BY bm25(chunks_fts, 1.0, 0.5) LIMIT ?", (match, limit))
    return [(int(r[0]), float(r[1])) for r in rows]


def page_scores(db: sqlite3.Connection, query: str, pages: Iterable[tuple[int, int]]
                ) -> dict[tuple[int, int], float]:
    """BM25 of whole pages, prose and slide text as one, for these (document, page) pairs.

    Pages without any query word are left out (their BM25 is 0). One pass over the matches,
    filtered here: handing FTS5 the list of rowids was twenty times slower.
    """
    wanted = set(pages)
    match = _match(terms(query))
    if match is None or not wanted:
        return {}
    rows = db.execute(
        "SELECT p.doc_id, p.number, -bm25(pages_fts) FROM pages_fts "
        "JOIN pages p ON p.rowid = pages_fts.rowid WHERE pages_fts MATCH ?", (match,))
    return {key: float(r[2]) for r in rows if (key := (int(r[0]), int(r[1]))) in wanted}


def _match(words: list[str]) -> str | None:
    """The FTS5 query for these words: each quoted (never syntax), joined by OR."""
    return " OR ".join(f'"{w}"' for w in words) or None
