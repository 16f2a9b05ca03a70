"""SQLite side of the index: documents, pages, figures, passages (with their vectors), FTS5.

Every SQL statement of the index is here; callers get records (notesearch.records) or plain
values back, never rows, so no column name leaks out of this module.

The schema grows by numbered migrations, never by editing one that shipped: an index records the
migrations applied to it, a build applies the missing ones, and a reader refuses an index whose
schema it does not know.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from .records import (
    Chunk,
    Figure,
    Page,
    PendingFigure,
    PendingScan,
    StoredDocument,
    StoredFigure,
    StoredPassage,
)


def m001_initial(db: sqlite3.Connection) -> None:
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,      -- path relative to the notes folder
            path TEXT NOT NULL,             -- absolute path when indexed
            sha256 TEXT NOT NULL,
            course INTEGER,
            title TEXT NOT NULL,
            pages INTEGER NOT NULL,
            size INTEGER NOT NULL,
            indexed_at TEXT NOT NULL
        );
        CREATE TABLE pages (
            doc_id INTEGER NOT NULL,
            number INTEGER NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (doc_id, number)
        );
        CREATE TABLE figures (
            id INTEGER PRIMARY KEY,
            doc_id INTEGER NOT NULL,
            page INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            path TEXT NOT NULL,             -- relative to the index folder
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            ocr_done INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX figures_doc_page ON figures (doc_id, page);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            doc_id INTEGER NOT NULL,
            page INTEGER NOT NULL,
            page_end INTEGER NOT NULL,
            kind TEXT NOT NULL,             -- 'text' or 'figure'
            heading TEXT NOT NULL,
            text TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            figure_id INTEGER,
            vector BLOB NOT NULL
        );
        CREATE INDEX chunks_doc ON chunks (doc_id);
        CREATE INDEX chunks_hash ON chunks (text_hash);
        CREATE VIRTUAL TABLE chunks_fts USING fts5 (
            text, heading, content='chunks', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts (rowid, text, heading) VALUES (new.id, new.text, new.heading);
        END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts (chunks_fts, rowid, text, heading)
            VALUES ('delete', old.id, old.text, old.heading);
        END;
    """)


def _page_figures(doc: str, page: str) -> str:
    """SQL for a page's slide text: all its OCR passages, recomputed whenever one comes or goes,
    so the page index never disagrees with the passages."""
    return (f"COALESCE((SELECT group_concat(c.text, char(10)) FROM chunks c WHERE "
            f"c.kind = 'figure' AND c.doc_id = {doc} AND c.page = {page}), '')")


def m002_page_search(db: sqlite3.Connection) -> None:
    """BM25 over whole pages, prose and slide text together: a page whose slide holds one
    query word and whose prose holds another answers the query, though no passage does."""
    db.executescript(f"""
        CREATE VIRTUAL TABLE pages_fts USING fts5 (
            text, figures, tokenize='porter unicode61 remove_diacritics 2'
        );
        INSERT INTO pages_fts (rowid, text, figures)
            SELECT rowid, text, {_page_figures("pages.doc_id", "pages.number")} FROM pages;
        CREATE TRIGGER pages_ai AFTER INSERT ON pages BEGIN
            INSERT INTO pages_fts (rowid, text, figures) VALUES (new.rowid, new.text, '');
        END;
        CREATE TRIGGER pages_ad AFTER DELETE ON pages BEGIN
            DELETE FROM pages_fts WHERE rowid = old.rowid;
        END;
        CREATE TRIGGER figure_text_ai AFTER INSERT ON chunks WHEN new.kind = 'figure' BEGIN
            UPDATE pages_fts SET figures = {_page_figures("new.doc_id", "new.page")}
            WHERE rowid = (SELECT rowid FROM pages WHERE doc_id = new.doc_id
                           AND number = new.page);
        END;
        CREATE TRIGGER figure_text_ad AFTER DELETE ON chunks WHEN old.kind = 'figure' BEGIN
            UPDATE pages_fts SET figures = {_page_figures("old.doc_id", "old.page")}
            WHERE rowid = (SELECT rowid FROM pages WHERE doc_id = old.doc_id
                           AND number = old.page);
        END;
    """)


def m003_page_source(db: sqlite3.Connection) -> None:
    """Where a page's text comes from: its text layer ('text'), or full-page OCR of a scanned
    page, pending ('scan': no text yet) or done ('ocr')."""
    db.execute("ALTER TABLE pages ADD COLUMN source TEXT NOT NULL DEFAULT 'text'")


def m004_page_lines(db: sqlite3.Connection) -> None:
    """The OCR lines of scanned pages with their boxes (percent of the page), so the page view
    can mark the lines that hold a passage: such a page has no text layer to find it in."""
    db.executescript("""
        CREATE TABLE page_lines (
            doc_id INTEGER NOT NULL,
            page INTEGER NOT NULL,
            line INTEGER NOT NULL,
            text TEXT NOT NULL,
            left REAL NOT NULL, top REAL NOT NULL, width REAL NOT NULL, height REAL NOT NULL,
            PRIMARY KEY (doc_id, page, line)
        );
        -- pages OCR'd before line boxes were kept are read again by the next OCR phase
        UPDATE pages SET source = 'scan' WHERE source = 'ocr';
    """)


def m005_formats(db: sqlite3.Connection) -> None:
    """Notes of several formats: each document's format (its source module, see
    notesearch.sources), and for a unit cited by section rather than page (a Markdown
    section) its heading path and the line it starts on."""
    db.executescript("""
        ALTER TABLE documents ADD COLUMN format TEXT NOT NULL DEFAULT 'pdf';
        ALTER TABLE pages ADD COLUMN section TEXT NOT NULL DEFAULT '';
        ALTER TABLE pages ADD COLUMN line INTEGER NOT NULL DEFAULT 0;
    """)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    m001_initial, m002_page_search, m003_page_source, m004_page_lines, m005_formats]
Line = tuple[str, float, float, float, float]  # an OCR line: text, left, top, width, height
FORMAT_VERSION = len(MIGRATIONS)


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        # as_uri() percent-encodes the path: a folder named with '#', '?' or '%' would otherwise
        # cut the URI short and open (and create!) another file.
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True,
                             check_same_thread=False)
    else:
        db = sqlite3.connect(path, check_same_thread=False)
        db.execute("PRAGMA journal_mode = DELETE")
        db.execute("PRAGMA synchronous = FULL")
    db.row_factory = sqlite3.Row
    return db


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this index lacks, in order, each in its own transaction; return
    their names."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    applied = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    done = []
    for migration in MIGRATIONS:
        if migration.__name__ not in applied:
            with db:
                migration(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (migration.__name__, now()))
            done.append(migration.__name__)
    return done


def format_state(db: sqlite3.Connection) -> str:
    """How this database relates to the schema this version of notesearch knows.

    Returns "current"; "older" (fewer migrations: a build upgrades it in its copy); "newer"
    (written by a later notesearch); "foreign" (a SQLite database, but not a notesearch index);
    or "damaged" (not a readable database at all).
    """
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if not {"_migrations", "meta"} <= tables:
            return "foreign"
        applied = [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY rowid")]
        db.execute("SELECT count(*) FROM meta").fetchone()
    except sqlite3.DatabaseError:
        return "damaged"
    known = [m.__name__ for m in MIGRATIONS]
    if applied == known:
        return "current"
    if applied == known[: len(applied)]:
        return "older"
    return "newer"


T = TypeVar("T")


def read_each(paths: Iterable[Path], read: Callable[[sqlite3.Connection], T]) -> Iterator[T]:
    """`read(db)` of each database in `paths` that opens and reads; a missing or damaged one
    (a generation left from before a --rebuild) is skipped, never fatal to the caller."""
    for path in paths:
        try:
            db = connect(path, readonly=True)
        except sqlite3.Error:
            continue
        try:
            yield read(db)
        except sqlite3.Error:
            continue
        finally:
            db.close()


def referenced_files(db: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """What one generation keeps alive on disk: its figures' paths and its documents' hashes
    (rendered pages are named by them)."""
    return ([r[0] for r in db.execute("SELECT path FROM figures")],
            [r[0] for r in db.execute("SELECT sha256 FROM documents")])


def figure_paths_of(db: sqlite3.Connection, doc_id: int) -> list[str]:
    """Where a document's figure images are, relative to the index folder."""
    return [r[0] for r in db.execute("SELECT path FROM figures WHERE doc_id = ?", (doc_id,))]


def figures_pending(db: sqlite3.Connection) -> dict[str, str]:
    """Each figure image whose OCR text is not in the index yet, once: sha256 -> its path
    relative to the index folder."""
    return dict(db.execute("SELECT DISTINCT sha256, path FROM figures WHERE ocr_done = 0"))


def figure_rows_pending(db: sqlite3.Connection) -> list[PendingFigure]:
    """Every figure of every document still waiting for its OCR text."""
    return [PendingFigure(*r) for r in db.execute(
        "SELECT id, doc_id, page, sha256 FROM figures WHERE ocr_done = 0")]


def mark_figures_read(db: sqlite3.Connection, figure_ids: list[int]) -> None:
    db.executemany("UPDATE figures SET ocr_done = 1 WHERE id = ?", [(i,) for i in figure_ids])


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def get_meta(db: sqlite3.Connection) -> dict[str, str]:
    return {row["key"]: row["value"] for row in db.execute("SELECT key, value FROM meta")}


def set_meta(db: sqlite3.Connection, **values: str) -> None:
    db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())


_DOCUMENT = ("SELECT id, name, path, sha256, course, title, pages, size, indexed_at, format "
             "FROM documents")


def documents(db: sqlite3.Connection) -> dict[str, StoredDocument]:
    """Every document by its name."""
    return {row["name"]: StoredDocument(*row) for row in db.execute(_DOCUMENT)}


def document(db: sqlite3.Connection, doc_id: int) -> StoredDocument | None:
    if not 0 < doc_id < 2**63:
        return None
    row = db.execute(f"{_DOCUMENT} WHERE id = ?", (doc_id,)).fetchone()
    return StoredDocument(*row) if row else None


def document_counts(db: sqlite3.Connection) -> dict[int, tuple[int, int]]:
    """Passages and figures of every document, by id."""
    return {r[0]: (r[1], r[2]) for r in db.execute(
        "SELECT d.id, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id), "
        "(SELECT count(*) FROM figures f WHERE f.doc_id = d.id) FROM documents d")}


def courses_held(db: sqlite3.Connection) -> list[int]:
    """The course numbers of the notes in the index, in order."""
    return [r[0] for r in db.execute(
        "SELECT DISTINCT course FROM documents WHERE course IS NOT NULL ORDER BY course")]


def documents_of_course(db: sqlite3.Connection, course: int) -> set[int]:
    return {r[0] for r in db.execute("SELECT id FROM documents WHERE course = ?", (course,))}


def passage_ids(db: sqlite3.Connection, doc_ids: set[int]) -> np.ndarray:
    """Ids of every passage of these documents (a course filter for the dense ranker)."""
    marks = ",".join("?" * len(doc_ids))
    rows = db.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", list(doc_ids))
    return np.array([r[0] for r in rows], dtype=np.int64)


_PASSAGE = ("SELECT c.id, c.doc_id, c.page, c.page_end, c.kind, c.text, c.heading, d.name, "
            "d.course, d.title, d.format, COALESCE(p.section, ''), COALESCE(p.line, 0), "
            "COALESCE(f.width, 0), COALESCE(f.height, 0) FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id "
            "LEFT JOIN pages p ON p.doc_id = c.doc_id AND p.number = c.page "
            "LEFT JOIN figures f ON f.id = c.figure_id")


def passages(db: sqlite3.Connection, ids: Iterable[int]) -> dict[int, StoredPassage]:
    """These passages by id (unknown ids are left out)."""
    ids = list(ids)
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {r[0]: StoredPassage(*r)
            for r in db.execute(f"{_PASSAGE} WHERE c.id IN ({marks})", ids)}


def passage_places(db: sqlite3.Connection, ids: Iterable[int]
                   ) -> dict[int, tuple[int, int, int, str]]:
    """Where each passage is, (doc_id, page, page_end, kind) by id: all that ranking needs of
    the hundreds of candidates (`passages` reads everything, for the few that are shown).

    Copies of a note (the same bytes under two names, a download saved twice) give the id of
    the first, so ranking shows each page once (it showed both copies' pages, tied)."""
    ids = list(ids)
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    cursor = db.execute(
        "SELECT c.id, (SELECT min(twin.id) FROM documents twin WHERE twin.sha256 = d.sha256), "
        "c.page, c.page_end, c.kind FROM chunks c JOIN documents d ON d.id = c.doc_id "
        f"WHERE c.id IN ({marks})", ids)
    cursor.row_factory = None
    return {r[0]: r[1:] for r in cursor}


Span = tuple[int, int, int]  # pages first..last of a document: (doc_id, first, last)


def _rows_by_span(db: sqlite3.Connection, spans: list[Span], select: str) -> list[list[tuple]]:
    """The rows of `select` for each span, in the spans' order: one statement for all the hits
    of a search instead of one each. `select` reads the spans as `span(n, doc, lo, hi)` and
    returns the span's `n` first, ordered by it."""
    rows: list[list[tuple]] = [[] for _ in spans]
    if not spans:
        return rows
    values = ",".join(["(?,?,?,?)"] * len(spans))
    params = [value for n, span in enumerate(spans) for value in (n, *span)]
    cursor = db.execute(f"WITH span(n, doc, lo, hi) AS (VALUES {values}) {select}", params)
    cursor.row_factory = None
    for row in cursor:
        rows[row[0]].append(row[1:])
    return rows


def text_passages_on(db: sqlite3.Connection, spans: list[Span]) -> list[list[tuple[int, str]]]:
    """For each span, (id, text) of the prose passages touching its pages, in order."""
    return _rows_by_span(db, spans, (
        "SELECT span.n, c.id, c.text FROM span JOIN chunks c ON c.doc_id = span.doc "
        "AND c.kind = 'text' AND c.page <= span.hi AND c.page_end >= span.lo "
        "ORDER BY span.n, c.id"))


def text_of_pages(db: sqlite3.Connection, spans: list[Span]) -> list[str]:
    """For each span, the text of its pages, one after another."""
    return ["\n".join(text for text, in rows) for rows in _rows_by_span(db, spans, (
        "SELECT span.n, p.text FROM span JOIN pages p ON p.doc_id = span.doc "
        "AND p.number BETWEEN span.lo AND span.hi ORDER BY span.n, p.number"))]


def figures_on(db: sqlite3.Connection, spans: list[Span]) -> list[list[StoredFigure]]:
    """For each span, the figures of its pages, in page order."""
    return [[StoredFigure(*row) for row in rows] for rows in _rows_by_span(db, spans, (
        "SELECT span.n, f.path, f.page, f.sha256 FROM span JOIN figures f "
        "ON f.doc_id = span.doc AND f.page BETWEEN span.lo AND span.hi "
        "ORDER BY span.n, f.page, f.id"))]


def figure_passages_on(db: sqlite3.Connection, spans: list[Span]) -> list[int]:
    """The figure passages (OCR text) of these spans' pages, span by span, in page order."""
    return [i for rows in _rows_by_span(db, spans, (
        "SELECT span.n, c.id FROM span JOIN chunks c ON c.doc_id = span.doc AND c.kind = 'figure' "
        "AND c.page BETWEEN span.lo AND span.hi ORDER BY span.n, c.page, c.id")) for (i,) in rows]


def figure_of(db: sqlite3.Connection, ids: Iterable[int]) -> dict[int, StoredFigure]:
    """The figure each of these figure passages was read from, by passage id."""
    ids = [int(i) for i in ids]
    marks = ",".join("?" * len(ids))
    return {r[0]: StoredFigure(*r[1:]) for r in db.execute(
        f"SELECT c.id, f.path, f.page, f.sha256 FROM chunks c JOIN figures f "
        f"ON f.id = c.figure_id WHERE c.id IN ({marks})", ids)} if ids else {}


def figure_texts(db: sqlite3.Connection, doc_id: int, first: int, last: int
                 ) -> dict[str, str]:
    """The OCR text of each figure of pages first..last that has some, by its hash."""
    return dict(db.execute(
        "SELECT f.sha256, group_concat(c.text, ' ') FROM figures f JOIN chunks c "
        "ON c.doc_id = f.doc_id AND c.figure_id = f.id "
        "WHERE f.doc_id = ? AND f.page BETWEEN ? AND ? GROUP BY f.id", (doc_id, first, last)))


def figure_path(db: sqlite3.Connection, sha256: str) -> str | None:
    """Where the PNG of a figure is, relative to the index folder."""
    row = db.execute("SELECT path FROM figures WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone()
    return row[0] if row else None


def clear(db: sqlite3.Connection) -> None:
    """Forget every document (their passages, pages and figures too)."""
    for table in ("chunks", "figures", "pages", "page_lines", "documents"):
        db.execute(f"DELETE FROM {table}")


def delete_document(db: sqlite3.Connection, doc_id: int) -> None:
    for table in ("chunks", "figures", "pages", "page_lines"):
        db.execute(f"DELETE FROM {table} WHERE doc_id = ?", (doc_id,))
    db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))


def move_document(db: sqlite3.Connection, doc_id: int, path: str) -> None:
    db.execute("UPDATE documents SET path = ? WHERE id = ?", (path, doc_id))


def last_document_id(db: sqlite3.Connection) -> int:
    """The highest id any note of this index has had, in this generation or before it."""
    (highest,) = db.execute("SELECT coalesce(max(id), 0) FROM documents").fetchone()
    return max(int(highest), int(get_meta(db).get("last_doc_id", 0)))


def add_document(db: sqlite3.Connection, *, name: str, path: str, sha256: str,
                 course: int | None, title: str, pages: int, size: int, format: str) -> int:
    """A new note, under an id no note of this index had before: a page link kept in an open
    tab or a bookmark must not show another note once the one it named was removed (SQLite
    gives the highest id again) or the index rebuilt (ids started at 1 again)."""
    doc_id = last_document_id(db) + 1
    db.execute(
        "INSERT INTO documents (id, name, path, sha256, course, title, pages, size, indexed_at, "
        "format) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (doc_id, name, path, sha256, course, title, pages, size, now(), format))
    set_meta(db, last_doc_id=str(doc_id))
    return doc_id


def add_pages(db: sqlite3.Connection, doc_id: int, pages: list[Page],
              sources: dict[int, str] | None = None) -> None:
    """Insert pages (or sections); `sources` names the pages whose text is not their text
    layer's ('scan' or 'ocr', see m003_page_source)."""
    db.executemany(
        "INSERT INTO pages (doc_id, number, text, source, section, line) VALUES (?, ?, ?, ?, ?, ?)",
        [(doc_id, p.number, p.text, (sources or {}).get(p.number, "text"), p.section, p.line)
         for p in pages])


def page_texts(db: sqlite3.Connection, doc_id: int, first: int = 1, last: int = 2**62
               ) -> list[tuple[int, str]]:
    """A document's pages (those from `first` to `last`) as (number, text), in order."""
    return [(r[0], r[1]) for r in db.execute(
        "SELECT number, text FROM pages WHERE doc_id = ? AND number BETWEEN ? AND ? "
        "ORDER BY number", (doc_id, first, last))]


def scans_pending(db: sqlite3.Connection) -> list[PendingScan]:
    """Scanned pages still waiting for OCR."""
    return [PendingScan(*r) for r in db.execute(
        "SELECT p.doc_id, p.number, d.path, d.sha256 FROM pages p JOIN documents d "
        "ON d.id = p.doc_id WHERE p.source = 'scan' ORDER BY p.doc_id, p.number")]


def ocr_pending(db: sqlite3.Connection) -> int:
    """Figures and scanned pages that OCR has not read yet (a --no-ocr build leaves them)."""
    return int(db.execute(
        "SELECT (SELECT count(*) FROM figures WHERE ocr_done = 0) "
        "+ (SELECT count(*) FROM pages WHERE source = 'scan')").fetchone()[0])


def set_page_text(db: sqlite3.Connection, doc_id: int, number: int, text: str,
                  source: str) -> None:
    """Replace one page's text. Delete and insert, so the pages_fts triggers follow; the page's
    slide text (none on a scanned page, whose images are not figures) is recomputed."""
    db.execute("DELETE FROM pages WHERE doc_id = ? AND number = ?", (doc_id, number))
    add_pages(db, doc_id, [Page(number, text)], {number: source})
    db.execute(f"UPDATE pages_fts SET figures = {_page_figures('?', '?')} WHERE rowid = "
               "(SELECT rowid FROM pages WHERE doc_id = ? AND number = ?)",
               (doc_id, number, doc_id, number))


def set_page_lines(db: sqlite3.Connection, doc_id: int, number: int, lines: list[Line]) -> None:
    """Record a scanned page's OCR lines (replacing any earlier ones)."""
    db.execute("DELETE FROM page_lines WHERE doc_id = ? AND page = ?", (doc_id, number))
    db.executemany("INSERT INTO page_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   [(doc_id, number, n, *line) for n, line in enumerate(lines)])


def page_lines(db: sqlite3.Connection, doc_id: int, number: int) -> list[Line]:
    """A scanned page's OCR lines in reading order; none for a page with a text layer."""
    return [tuple(r) for r in db.execute(
        "SELECT text, left, top, width, height FROM page_lines WHERE doc_id = ? AND page = ? "
        "ORDER BY line", (doc_id, number))]


def delete_text_chunks(db: sqlite3.Connection, doc_id: int) -> None:
    """Drop a document's prose passages (its figures' passages stay), to cut them again."""
    db.execute("DELETE FROM chunks WHERE doc_id = ? AND kind = 'text'", (doc_id,))


def add_figure(db: sqlite3.Connection, doc_id: int, figure: Figure, ocr_done: bool) -> int:
    cursor = db.execute(
        "INSERT INTO figures (doc_id, page, sha256, path, width, height, ocr_done) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (doc_id, figure.page, figure.sha256, figure.path, figure.width, figure.height,
         int(ocr_done)))
    return int(cursor.lastrowid)


def add_chunks(db: sqlite3.Connection, doc_id: int, chunks: list[Chunk], vectors: np.ndarray,
               figure_ids: list[int | None] | None = None) -> None:
    figure_ids = figure_ids or [None] * len(chunks)
    if not chunks:
        return
    db.executemany(
        "INSERT INTO chunks (doc_id, page, page_end, kind, heading, text, text_hash, figure_id, "
        "vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(doc_id, c.page, c.page_end, c.kind, c.heading, c.text, text_hash(c.embedded_text), f,
          np.asarray(v, dtype=np.float32).tobytes())
         for c, v, f in zip(chunks, vectors, figure_ids, strict=True)])


def known_vectors(db: sqlite3.Connection, hashes: list[str]) -> dict[str, bytes]:
    """Vectors already computed for these passages, so a changed PDF re-embeds only news.

    `hashes` are of what was embedded (`Chunk.embedded_text`), not of the stored text.
    """
    found: dict[str, bytes] = {}
    for start in range(0, len(hashes), 500):
        part = hashes[start:start + 500]
        marks = ",".join("?" * len(part))
        for row in db.execute(
                f"SELECT text_hash, vector FROM chunks WHERE text_hash IN ({marks})", part):
            found[row[0]] = row[1]
    return found


def passage_count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])


def iter_vectors(db: sqlite3.Connection, dim: int, batch: int = 4096
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All passage vectors in batches, so building FAISS never holds two copies of them."""
    cursor = db.execute("SELECT id, vector FROM chunks ORDER BY id")
    while rows := cursor.fetchmany(batch):
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(-1, dim)
        yield ids, vectors


# ----------------------------------------------------------------------------- BM25 (FTS5)

def passages_holding(db: sqlite3.Connection, words: Iterable[str]) -> list[int]:
    """For each word, how many passages hold its stem. The stems come from FTS5's own
    tokenizer (a scratch table in the connection's temp schema), so they are exactly the terms
    the index holds."""
    words = list(words)
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms USING fts5("
               "t, tokenize='porter unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_vocab USING fts5vocab("
               "temp, query_terms, instance)")
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunk_vocab USING fts5vocab("
               "main, chunks_fts, row)")
    db.execute("DELETE FROM temp.query_terms")
    db.executemany("INSERT INTO temp.query_terms (rowid, t) VALUES (?, ?)",
                   list(enumerate(words)))
    counts = [0] * len(words)
    for position, stem in db.execute("SELECT doc, term FROM temp.query_vocab").fetchall():
        row = db.execute("SELECT doc FROM temp.chunk_vocab WHERE term = ?", (stem,)).fetchone()
        counts[position] = max(counts[position], row[0] if row else 0)
    return counts


def bm25_passages(db: sqlite3.Connection, match: str, limit: int,
                  doc_ids: set[int] | None = None, kind: str | None = None
                  ) -> list[tuple[int, float]]:
    """Passages matching an FTS5 expression, (id, BM25 with higher better), best first; only
    those of `doc_ids` and of `kind` ("text" or "figure") when given."""
    only, params = "", [match]
    if doc_ids is not None:
        only = (" AND rowid IN (SELECT id FROM chunks WHERE doc_id IN ("
                + ",".join(str(int(d)) for d in doc_ids) + "))")
    if kind is not None:
        only += " AND rowid IN (SELECT id FROM chunks WHERE kind = ?)"
        params.append(kind)
    rows = db.execute(
        "SELECT rowid, -bm25(chunks_fts, 1.0, 0.5) FROM chunks_fts WHERE chunks_fts MATCH ?"
        f"{only} ORDER BY bm25(chunks_fts, 1.0, 0.5) LIMIT ?", [*params, limit])
    return [(int(r[0]), float(r[1])) for r in rows]


def passages_matching(db: sqlite3.Connection, match: str, ids: Iterable[int]) -> set[int]:
    """Those of these passages that match an FTS5 expression."""
    ids = [int(i) for i in ids]
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    return {r[0] for r in db.execute(
        f"SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid IN ({marks})",
        [match, *ids])}


def bm25_pages(db: sqlite3.Connection, match: str) -> Iterator[tuple[tuple[int, int], float]]:
    """Every page matching an FTS5 expression: ((doc_id, page), BM25 with higher better)."""
    rows = db.execute(
        "SELECT p.doc_id, p.number, -bm25(pages_fts) FROM pages_fts "
        "JOIN pages p ON p.rowid = pages_fts.rowid WHERE pages_fts MATCH ?", (match,))
    return (((int(r[0]), int(r[1])), float(r[2])) for r in rows)
