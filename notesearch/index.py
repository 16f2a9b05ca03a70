"""`NoteIndex`: the public face of notesearch. The CLI and the web app only call this.

    report = NoteIndex.build("notes/", "index/")        # new, changed and removed PDFs only
    hits = NoteIndex.open("index/").search("dropout", k=5, course=2)
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import answer, hints, layout, lexical, rank, store, vectors
from .courses import COURSES, course_label
from .embed import Embedder
from .errors import BadQuery, IndexMismatch, IndexNotFound
from .models import find_export, query_embedder
from .records import Hit
from .textnorm import normalise, query_for_embedding

if TYPE_CHECKING:  # the builder (PDF reading, chunking) loads only when building, not to search
    from .build import BuildReport
    from .extract import Warn

DEFAULT_INDEX = Path("index")
RANKERS = (*rank.MODES, "rrf")  # "rrf": reciprocal rank fusion, the baseline `eval` compares with
CANDIDATES = 100  # passages each ranker proposes before fusion

@dataclass
class FigureHit:
    """A figure whose OCR text matches a query, cited like a passage."""

    rank: int
    score: float
    file: str
    course: int | None
    course_title: str
    page: int
    path: str  # absolute path of the PNG
    text: str


class NoteIndex:
    """A built index, open for searching."""

    def __init__(self, index_dir: Path, generation: Path) -> None:
        self.dir = layout.IndexDir(index_dir)
        self.generation = generation
        self.db = store.connect(generation / layout.DB_NAME, readonly=True)
        try:
            state = store.format_state(self.db)
            if state != "current":
                notes = store.get_meta(self.db).get("notes_dir") if state == "older" else None
                raise IndexMismatch(hints.index_problem(
                    index_dir, state, notes or _notes_dir_of(self.dir)))
            self.meta = store.get_meta(self.db)
            # Loaded now, not on first search: two later builds delete this generation's files.
            self.vectors = vectors.load(generation / layout.VECTORS_NAME)
        except BaseException:
            self.db.close()
            raise
        self.model_name = self.meta["model"]
        self._embedder: Embedder | None = None
        self._one_query = False

    # ----------------------------------------------------------------------------- opening

    @classmethod
    def open(cls, index_dir: Path | str = DEFAULT_INDEX, model: str | None = None,
             one_query: bool = False) -> NoteIndex:
        """Open the live generation of an index; `model`, if given, must be the one it used.

        `one_query`: this index answers one search and closes (the CLI), so the query model
        starts without the set-up that only pays back over many queries (see embed.py)."""
        index_dir = Path(index_dir)
        if index_dir.exists() and not index_dir.is_dir():
            raise IndexNotFound(f"{index_dir} is a file, not an index folder; give the folder "
                                "an index was built in")
        for _attempt in range(3):  # a build may swap generations between reading and opening
            generation = layout.IndexDir(index_dir).current()
            if generation is None:
                raise IndexNotFound(f"no index at {index_dir}; build one with "
                                    f"`{hints.index_command(index_dir, None)}`")
            try:
                index = cls(index_dir, generation)
                break
            except (sqlite3.OperationalError, RuntimeError):  # deleted while being opened
                time.sleep(0.05)
        else:
            raise IndexMismatch(hints.index_problem(index_dir, "damaged",
                                                    _notes_dir_of(layout.IndexDir(index_dir))))
        if model is not None and model != index.model_name:
            index.close()
            raise IndexMismatch(
                f"the index at {index_dir} was built with model {index.model_name!r}, not "
                f"{model!r}; search with the index's model, or rebuild with `"
                + hints.index_command(index_dir, index.meta.get("notes_dir"), "--model", model,
                                      "--rebuild") + "`")
        index._one_query = one_query
        return index

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> NoteIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = query_embedder(self.model_name, self.dir, self._one_query)
        return self._embedder

    # ----------------------------------------------------------------------------- building

    @staticmethod
    def build(notes_dir: Path | str, index_dir: Path | str = DEFAULT_INDEX, *,
              model: str | None = None, ocr: bool = True, rebuild: bool = False,
              progress: bool = False, warn: Warn | None = None) -> BuildReport:
        """Bring the index in step with `notes_dir`: only new and changed PDFs are read.

        Text passages are committed first, so search works while OCR runs; OCR text of the
        figures then lands in a second commit. Either commit is atomic. `warn` receives each
        warning (default: a line on stderr).
        """
        from .build import Builder, warn_on_stderr

        return Builder(Path(notes_dir), Path(index_dir), model, ocr, rebuild, progress,
                       warn or warn_on_stderr).run()

    def update(self, notes_dir: Path | str, **options) -> BuildReport:
        """`build` into this index's folder with its model; reopen to see the result."""
        return NoteIndex.build(notes_dir, self.dir.root, model=self.model_name, **options)

    # ----------------------------------------------------------------------------- searching

    def search(self, query: str, k: int = 5, course: int | None = None,
               mode: str = "hybrid") -> list[Hit]:
        """The k best pages for `query`, each cited by its best passage."""
        query = _check_query(query, k, mode)
        if course is not None and course not in COURSES:
            raise BadQuery(f"course must be one of 1-5, not {course}")
        allowed = self._allowed_docs(course)
        if allowed is not None and not allowed:
            return []
        dense: rank.Scored = []
        lexical_hits: rank.Scored = []
        query_vector = self.embedder.encode([query_for_embedding(query)])[0]
        if mode != "lexical":
            ids = None if allowed is None else self._chunk_ids(allowed)
            dense = vectors.search(self.vectors, query_vector, CANDIDATES, ids)
        if mode != "dense":
            lexical_hits = lexical.search(self.db, query, CANDIDATES, allowed,
                                          total=self.vectors.ntotal)
        info = self._passages({i for i, _ in dense} | {i for i, _ in lexical_hits})
        page_bm25 = None
        if mode == "hybrid" and self.vectors.ntotal <= lexical.LARGE_INDEX:
            # Above LARGE_INDEX a second full BM25 pass costs more than its evidence is worth.
            page_bm25 = lexical.page_scores(
                self.db, query, {(r["doc_id"], r["page"]) for r in info.values()})
        ranked = rank.rank_pages(
            dense, lexical_hits,
            {i: (r["doc_id"], r["page"], r["page_end"], r["kind"]) for i, r in info.items()},
            self._cosines(query_vector, info), mode=mode, k=k, page_bm25=page_bm25)
        rows = [info[scored.chunk_id] for scored in ranked]
        answers = self.answers(query, rows, query_vector)
        return [self._hit(n, scored, row, text)
                for n, (scored, row, text) in enumerate(zip(ranked, rows, answers, strict=True),
                                                        start=1)]

    def figures(self, query: str, k: int = 5, course: int | None = None) -> list[FigureHit]:
        """Figures whose text best answers `query`, for opening the slide itself."""
        _check_query(query, k, "hybrid")
        hits = self.search(query, k=max(k * 4, 20), course=course)
        out: list[FigureHit] = []
        seen: set[str] = set()
        for hit in hits:
            rows = self.db.execute(
                "SELECT f.path, f.page, c.text FROM figures f LEFT JOIN chunks c "
                "ON c.figure_id = f.id WHERE f.doc_id = ? AND f.page BETWEEN ? AND ? "
                "ORDER BY c.id IS NULL, f.id", (hit.doc_id, hit.page, hit.page_end)).fetchall()
            for row in rows:
                if row["path"] in seen:
                    continue
                seen.add(row["path"])
                out.append(FigureHit(len(out) + 1, hit.score, hit.file, hit.course,
                                     hit.course_title, row["page"],
                                     str(self.dir.root / row["path"]), row["text"] or ""))
        return out[:k]

    def _cosines(self, query_vector: np.ndarray, info: dict[int, sqlite3.Row]
                 ) -> dict[int, float]:
        """Exact cosine of the query with every candidate, lexical-only ones included:
        confidence is judged on meaning, whichever ranker proposed the passage."""
        ids = list(info)
        if not ids:
            return {}
        stored = vectors.reconstruct(self.vectors, ids)
        return dict(zip(ids, (stored @ query_vector).tolist(), strict=True))

    def answers(self, query: str, passages: list[sqlite3.Row],
                query_vector: np.ndarray | None = None) -> list[str]:
        """For each passage, the 1-3 sentences of its page that best answer `query` (see
        answer.py): each hit's `answer`, and what the page view marks. `search` passes the
        query vector it already has."""
        if query_vector is None:
            query_vector = self.embedder.encode([query_for_embedding(query)])[0]
        return answer.best_answers([self._evidence(p, query_vector) for p in passages], query)

    def _evidence(self, passage: sqlite3.Row, query_vector: np.ndarray) -> answer.Evidence:
        """A figure's answer comes from its OCR text; a passage's from its pages' prose, with
        the cosine of every passage on them."""
        if passage["kind"] == "figure":
            return answer.Evidence(passage["text"])
        where = (passage["doc_id"], passage["page"], passage["page_end"])
        text = "\n".join(r[0] for r in self.db.execute(
            "SELECT text FROM pages WHERE doc_id = ? AND number BETWEEN ? AND ? ORDER BY number",
            where))
        rows = {r["id"]: r for r in self.db.execute(
            "SELECT id, text FROM chunks WHERE doc_id = ? AND kind = 'text' AND page <= ? "
            "AND page_end >= ? ORDER BY id", (where[0], where[2], where[1]))}
        cosines = self._cosines(query_vector, rows)
        return answer.Evidence(text, tuple(r["text"] for r in rows.values()),
                               tuple(cosines[i] for i in rows))

    def _allowed_docs(self, course: int | None) -> set[int] | None:
        if course is None:
            return None
        return {r[0] for r in self.db.execute("SELECT id FROM documents WHERE course = ?",
                                              (course,))}

    def _chunk_ids(self, doc_ids: set[int]) -> np.ndarray:
        marks = ",".join("?" * len(doc_ids))
        rows = self.db.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", list(doc_ids))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def _passages(self, ids: set[int]) -> dict[int, sqlite3.Row]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT c.id, c.doc_id, c.page, c.page_end, c.kind, c.text, c.heading, d.name, "
            f"d.course, d.title FROM chunks c JOIN documents d ON d.id = c.doc_id "
            f"WHERE c.id IN ({marks})", list(ids))
        return {r["id"]: r for r in rows}

    def _hit(self, number: int, scored: rank.PageScore, row: sqlite3.Row, sentences: str
             ) -> Hit:
        figures = [
            {"path": str(self.dir.root / f["path"]), "page": f["page"], "sha256": f["sha256"]}
            for f in self.db.execute(
                "SELECT path, page, sha256 FROM figures WHERE doc_id = ? AND page BETWEEN ? AND ? "
                "ORDER BY page, id", (row["doc_id"], row["page"], row["page_end"]))
        ]
        return Hit(
            rank=number, score=round(scored.score, 4), file=row["name"], course=row["course"],
            course_title=COURSES.get(row["course"], row["title"]),
            page=row["page"], page_end=row["page_end"], text=row["text"], kind=row["kind"],
            figures=figures, confident=scored.confident, doc_id=row["doc_id"],
            chunk_id=row["id"], answer=sentences,
        )

    # ----------------------------------------------------------------------------- lookups

    def document(self, doc_id: int) -> sqlite3.Row | None:
        """A document's row (name, path, sha256, course, title, pages, size) by id."""
        if not 0 < doc_id < 2**63:
            return None
        return self.db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()

    def passage(self, chunk_id: int) -> sqlite3.Row | None:
        """A passage by id, with the pixel size of its figure when it is a figure's text."""
        if not 0 < chunk_id < 2**63:
            return None
        return self.db.execute(
            "SELECT c.id, c.doc_id, c.kind, c.text, c.page, c.page_end, f.width, f.height "
            "FROM chunks c LEFT JOIN figures f ON f.id = c.figure_id WHERE c.id = ?",
            (chunk_id,)).fetchone()

    def page_lines(self, doc_id: int, number: int) -> list[store.Line]:
        """A scanned page's OCR lines with their boxes, for the page view; [] for a typed
        page (its text layer locates passages)."""
        return store.page_lines(self.db, doc_id, number)

    def figure_file(self, sha256: str) -> Path | None:
        """The PNG of an indexed figure, by its hash."""
        row = self.db.execute("SELECT path FROM figures WHERE sha256 = ? LIMIT 1",
                              (sha256,)).fetchone()
        return self.dir.root / row["path"] if row else None

    # ----------------------------------------------------------------------------- status

    def status(self) -> dict:
        """What is indexed: documents with course, pages, passages and figures; model; size."""
        docs = [
            {"file": r["name"], "course": r["course"],
             "course_label": course_label(r["course"], r["title"]), "pages": r["pages"],
             "passages": r["passages"], "figures": r["figures"], "sha256": r["sha256"],
             "indexed_at": r["indexed_at"]}
            for r in self.db.execute(
                "SELECT d.*, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) AS passages, "
                "(SELECT count(*) FROM figures f WHERE f.doc_id = d.id) AS figures "
                "FROM documents d ORDER BY d.name")
        ]
        pending = store.ocr_pending(self.db)  # figures and scanned pages
        size = sum(p.stat().st_size for p in self.generation.iterdir())
        return {
            "index": str(self.dir.root), "notes_dir": self.meta.get("notes_dir"),
            "model": self.model_name, "dimension": int(self.meta["dim"]),
            "format_version": store.FORMAT_VERSION, "built_at": self.meta.get("built_at"),
            "documents": docs, "passages": sum(d["passages"] for d in docs),
            "figures_ocr_pending": pending, "size_bytes": size,
            "fast_query_path": find_export(self.model_name, self.dir) is not None,
            "ocr": self.meta.get("ocr", "on"),
        }


def _check_query(query: str, k: int, mode: str) -> str:
    query = normalise(query or "").strip()
    if not query:
        raise BadQuery("the query is empty; type what you are looking for")
    if k < 1:
        raise BadQuery(f"k must be at least 1, not {k}")
    if mode not in RANKERS:
        raise BadQuery(f"mode must be one of {', '.join(rank.MODES)}, not {mode!r}")
    return query


def _notes_dir_of(index: layout.IndexDir) -> str | None:
    """The notes folder any readable generation was built from, for a hint that runs as is."""
    databases = (generation / layout.DB_NAME
                 for generation in sorted(index.root.glob("gen-*"), reverse=True))
    with closing(store.read_each(databases, lambda db: store.get_meta(db).get("notes_dir"))) \
            as found:
        return next(found, None)
