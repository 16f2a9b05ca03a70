"""Fusion of dense and lexical evidence into ranked pages. Pure: lists in, list out.

A learner reads pages, so pages are ranked, not passages: a page is as good as its best passage,
and no page is shown twice.
"""

from __future__ import annotations

from dataclasses import dataclass

Scored = list[tuple[int, float]]  # (passage id, score), best first


@dataclass
class PageScore:
    chunk_id: int  # the passage that stands for the page
    doc_id: int
    page: int
    page_end: int
    score: float
    dense: float  # cosine of the query with the page's best passage (0 if none)
    confident: bool = True


DENSE_WEIGHT = 0.5
CONFIDENT_COSINE = 0.30


def rank_pages(dense: Scored, lexical: Scored, where: dict[int, tuple[int, int, int]],
               mode: str, k: int) -> list[PageScore]:
    """Merge both rankers' passages into the k best pages."""
    cosine = dict(dense)
    dense_norm = _minmax(dense)
    lex_norm = _minmax(lexical)
    if mode == "rrf":  # the textbook fusion, kept as a baseline for `notesearch eval`
        fused = _rrf(dense, lexical)
    elif mode == "dense":
        fused = dense_norm
    elif mode == "lexical":
        fused = lex_norm
    else:
        ids = set(dense_norm) | set(lex_norm)
        fused = {i: DENSE_WEIGHT * dense_norm.get(i, 0.0)
                 + (1 - DENSE_WEIGHT) * lex_norm.get(i, 0.0) for i in ids}
    best: dict[tuple[int, int], PageScore] = {}
    for chunk_id, score in fused.items():
        doc_id, page, page_end = where[chunk_id]
        key = (doc_id, page)
        if key not in best or score > best[key].score:
            best[key] = PageScore(chunk_id, doc_id, page, page_end, score,
                                  cosine.get(chunk_id, 0.0))
    ordered = sorted(best.values(), key=lambda p: -p.score)
    out: list[PageScore] = []
    shown: set[tuple[int, int]] = set()
    for page in ordered:
        pages = {(page.doc_id, n) for n in range(page.page, page.page_end + 1)}
        if pages & shown:
            continue
        shown |= pages
        page.confident = max(page.dense, max((cosine.get(c.chunk_id, 0.0) for c in out),
                                             default=0.0)) >= CONFIDENT_COSINE
        out.append(page)
        if len(out) == k:
            break
    return out


def _minmax(scored: Scored) -> dict[int, float]:
    if not scored:
        return {}
    values = [s for _, s in scored]
    low, high = min(values), max(values)
    span = high - low or 1.0
    return {i: (s - low) / span for i, s in scored}


def _rrf(*rankings: Scored, k: int = 60) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for position, (chunk_id, _) in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1 / (k + position)
    return fused
