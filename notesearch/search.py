"""Searching a built index: a parsed query -> ranked, cited hits with their answers.

Owns the read side of a search: the dense ranker (FAISS vectors), the lexical one (FTS5 BM25,
lexical.py), their fusion into pages (rank.py) and each hit's answer sentences (answer.py).
`NoteIndex` holds one `Searcher` per open index; what the store returns are records.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import answer, lexical, rank, store, vectors
from .courses import COURSES
from .embed import Embedder
from .query import Query
from .records import FigureHit, Hit, StoredFigure, StoredPassage

CANDIDATES = 100  # passages each ranker proposes before fusion
FIGURE_CANDIDATES = 50  # figure passages BM25 proposes to `figures` beside the best pages' own


class Searcher:
    """The rankers over one generation's database and vectors."""

    def __init__(self, db: sqlite3.Connection, index: vectors.Vectors,
                 embedder: Callable[[], Embedder], root: Path) -> None:
        self.db = db
        self.vectors = index
        self._embedder = embedder  # loaded on first use: a lookup needs no model
        self.root = root

    def embed(self, query: Query) -> np.ndarray:
        return self._embedder().encode([query.embedding_text])[0]

    def search(self, query: Query, k: int, course: int | None, mode: str) -> list[Hit]:
        """The k best pages for `query`, each cited by its best passage."""
        allowed = None if course is None else store.documents_of_course(self.db, course)
        if allowed is not None and not allowed:
            return []
        dense: rank.Scored = []
        lexical_hits: rank.Scored = []
        query_vector = self.embed(query)
        if mode != "lexical":
            ids = None if allowed is None else store.passage_ids(self.db, allowed)
            dense = vectors.search(self.vectors, query_vector, CANDIDATES, ids)
        if mode != "dense":
            lexical_hits = lexical.search(self.db, query, CANDIDATES, allowed,
                                          total=self.vectors.ntotal)
        candidates = {i for i, _ in dense} | {i for i, _ in lexical_hits}
        places = store.passage_places(self.db, candidates)
        counts = lexical.word_counts(self.db, query)
        coverage = lexical.coverage(counts, self.vectors.ntotal)
        page_bm25 = None
        if mode == "hybrid":
            if self.vectors.ntotal <= lexical.LARGE_INDEX:
                # Above it a second full BM25 pass costs more than its evidence is worth.
                pages = {(doc, page) for doc, page, _, _ in places.values()}
                page_bm25 = lexical.page_scores(self.db, query, pages)
        ranked = rank.rank_pages(dense, lexical_hits, places,
                                 self._cosines(query_vector, list(places)), mode=mode, k=k,
                                 page_bm25=page_bm25, coverage=coverage)
        # A page that holds every word asked for answers a lookup, whatever its cosine: a
        # single rare word ("scharr") embeds far from any passage.
        holding = lexical.pages_holding_all(self.db, query, [(p.doc_id, p.page, p.page_end)
                                                             for p in ranked],
                                            counts, self.vectors.ntotal)
        for scored in ranked:
            scored.confident = scored.confident or any(
                (scored.doc_id, n) in holding for n in range(scored.page, scored.page_end + 1))
        shown = store.passages(self.db, [scored.chunk_id for scored in ranked])
        chosen = [shown[scored.chunk_id] for scored in ranked]
        answers = self.answers(query, chosen, query_vector)
        figures = store.figures_on(self.db, [_span(p) for p in chosen])
        return [self._hit(n, *hit) for n, hit
                in enumerate(zip(ranked, chosen, answers, figures, strict=True), start=1)]

    def figures(self, query: Query, k: int, course: int | None) -> list[FigureHit]:
        """The k figures that best print `query`: first those printing every word of it (a
        slide is found by what it says), then the other figures of the best pages, then
        figures printing some of its words elsewhere; by page rank, then by the share of the
        query printed.

        Candidates are the figures on the best pages of a search and the figure passages BM25
        finds on their own: a slide that prints the word may sit on a page whose prose is
        about something else. A figure is confident when it prints every word asked for, or
        when its page is a confident hit.
        """
        pages = self.search(query, max(k * 4, 20), course, "hybrid")
        allowed = None if course is None else store.documents_of_course(self.db, course)
        match = query.match()
        found = [] if match is None else store.bm25_passages(
            self.db, match, FIGURE_CANDIDATES, allowed, kind="figure")
        ids = list(dict.fromkeys(store.figure_passages_on(self.db, [_span(h) for h in pages])
                                 + [i for i, _ in found]))
        share = lexical.printed_share(self.db, query, ids, self.vectors.ntotal)
        passages = store.passages(self.db, ids)
        drawn = store.figure_of(self.db, ids)
        place = {(h.doc_id, n): (rank, h) for rank, h in enumerate(pages)
                 for n in range(h.page, h.page_end + 1)}
        unplaced = (len(pages), None)

        def order(i: int) -> tuple[int, int, float]:
            rank = place.get((passages[i].doc_id, passages[i].page), unplaced)[0]
            tier = 0 if share[i] > 0.999 else 1 if rank < len(pages) else 2
            return tier, rank, -share[i]
        ids.sort(key=order)
        out: list[FigureHit] = []
        seen: set[str] = set()
        for i in ids:
            passage, figure = passages[i], drawn[i]
            if figure.sha256 in seen:  # a figure's passages, or its copies on other pages
                continue
            seen.add(figure.sha256)
            hit = place.get((passage.doc_id, passage.page), unplaced)[1]
            text = store.figure_texts(self.db, passage.doc_id, figure.page, figure.page)
            out.append(FigureHit(
                rank=len(out) + 1, score=round(share[i], 4), **_cited(passage),
                page=figure.page, path=str(self.root / figure.path),
                text=text.get(figure.sha256, passage.text),
                confident=share[i] > 0.999 or (hit is not None and hit.confident)))
        for hit in pages:  # then figures without text on the best pages, in page order
            for figure in hit.figures:
                if figure["sha256"] not in seen:
                    seen.add(figure["sha256"])
                    out.append(FigureHit(len(out) + 1, 0.0, hit.file, hit.course,
                                         hit.course_title, figure["page"], figure["path"], "",
                                         hit.section, hit.line, hit.confident))
        return out[:k]

    def answers(self, query: Query, passages: list[StoredPassage],
                query_vector: np.ndarray | None = None) -> list[str]:
        """For each passage, the 1-3 sentences of its page that best answer `query` (see
        answer.py): a figure's from its OCR text, a passage's from its pages' prose, with the
        cosine of every passage on them."""
        if query_vector is None:
            query_vector = self.embed(query)
        spans = [_span(p) for p in passages]
        texts = store.text_of_pages(self.db, spans)
        on_pages = store.text_passages_on(self.db, spans)
        cosines = self._cosines(query_vector, list({i for on in on_pages for i, _ in on}))
        evidence = [
            answer.Evidence(p.text) if p.kind == "figure" else
            answer.Evidence(text, tuple(t for _, t in on), tuple(cosines[i] for i, _ in on))
            for p, text, on in zip(passages, texts, on_pages, strict=True)]
        return answer.best_answers(evidence, query)

    def _cosines(self, query_vector: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Exact cosine of the query with every candidate, lexical-only ones included:
        confidence is judged on meaning, whichever ranker proposed the passage."""
        if not ids:
            return {}
        stored = vectors.reconstruct(self.vectors, ids)
        return dict(zip(ids, (stored @ query_vector).tolist(), strict=True))

    def _hit(self, number: int, scored: rank.PageScore, passage: StoredPassage,
             sentences: str, figures_shown: list[StoredFigure]) -> Hit:
        figures = [{"path": str(self.root / f.path), "page": f.page, "sha256": f.sha256}
                   for f in figures_shown]
        return Hit(
            rank=number, score=round(scored.score, 4), **_cited(passage), page=passage.page,
            page_end=passage.page_end, text=passage.text, kind=passage.kind, figures=figures,
            confident=scored.confident, doc_id=passage.doc_id, chunk_id=passage.id,
            answer=sentences, format=passage.format,
        )


def _cited(passage: StoredPassage) -> dict[str, Any]:
    """What a hit or a figure cites of its passage's note: file, course, and for a Markdown
    note the section and the line it starts on."""
    sectioned = passage.format != "pdf"
    return {"file": passage.file, "course": passage.course,
            "course_title": COURSES.get(passage.course, passage.title),
            "section": passage.section if sectioned else None,
            "line": passage.line if sectioned else None}


def _span(passage: StoredPassage) -> store.Span:
    return passage.doc_id, passage.page, passage.page_end
