"""Fusion of dense and lexical evidence into ranked pages. Pure: lists in, list out.

A learner reads pages, so pages are ranked, not passages: a page is as good as its best passage,
and no page is shown twice.

Hybrid scores are z-score fusion: each ranker's candidate scores are standardised per query
(mean 0, spread 1) and added with weights. Unlike min-max, one weak lexical match is not
stretched to 1.0, and unlike reciprocal rank fusion, a clear winner keeps its margin.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

Scored = list[tuple[int, float]]  # (passage id, score), best first
MODES = ("hybrid", "dense", "lexical")  # what a user may choose

# Lexical evidence (exact course terms, OCR'd slide words) is weighted above dense similarity:
# notes are full of jargon a small embedding model blurs, and dense still orders the paraphrases.
DENSE_WEIGHT = 0.3
# A page is a confident answer when one of its passages has at least this cosine with the query.
# Calibrated on all-MiniLM-L6-v2 over the course notes: off-topic questions top out near 0.30,
# real ones start near 0.36 (see tests/test_quality.py and the README).
CONFIDENT_COSINE = 0.33


@dataclass
class PageScore:
    chunk_id: int  # the passage that stands for the page
    doc_id: int
    page: int
    page_end: int
    score: float
    cosine: float  # best cosine of the query with a passage of the page
    confident: bool = True


def rank_pages(dense: Scored, lexical: Scored, where: dict[int, tuple[int, int, int, str]],
               cosine: dict[int, float], mode: str, k: int) -> list[PageScore]:
    """Merge both rankers' passages into the k best pages.

    In hybrid mode, a figure's OCR text counts as lexical evidence only: slide text read by OCR
    is fragments (titles, labels, equations, misread handwriting), which match exactly but
    embed poorly, and as dense evidence they push fluent prose answers down.

    Args:
        dense: passages by cosine similarity, best first.
        lexical: passages by BM25, best first.
        where: passage id -> (document id, first page, last page, kind).
        cosine: passage id -> cosine with the query, for every candidate.
        mode: "hybrid", "dense", "lexical", or "rrf" (the baseline `eval` compares with).
        k: how many pages to return.
    """
    if mode == "dense":
        fused = dict(dense)
    elif mode == "lexical":
        fused = dict(lexical)
    elif mode == "rrf":
        fused = _rrf(dense, lexical)
    else:
        fused = _zfuse(dense, lexical, where, cosine)
    best: dict[tuple[int, int], PageScore] = {}
    for chunk_id, score in fused.items():
        doc_id, page, page_end, _kind = where[chunk_id]
        key = (doc_id, page)
        similarity = cosine.get(chunk_id, 0.0)
        current = best.get(key)
        if current is None or score > current.score:
            best[key] = PageScore(chunk_id, doc_id, page, page_end, score,
                                  max(similarity, current.cosine if current else 0.0))
        else:
            current.cosine = max(current.cosine, similarity)
    out: list[PageScore] = []
    shown: set[tuple[int, int]] = set()
    for page in sorted(best.values(), key=lambda p: -p.score):
        pages = {(page.doc_id, n) for n in range(page.page, page.page_end + 1)}
        if pages & shown:
            continue
        shown |= pages
        page.confident = page.cosine >= CONFIDENT_COSINE
        out.append(page)
        if len(out) == k:
            break
    return out


def _zfuse(dense: Scored, lexical: Scored, where: dict[int, tuple[int, int, int, str]],
           cosine: dict[int, float]) -> dict[int, float]:
    """Weighted sum of z-scores over the pooled candidates of both rankers.

    Every candidate has both scores: its exact cosine, and its BM25 (0 where no query word
    occurs, which is what BM25 gives such a passage). Figure passages carry no dense evidence
    (z = 0, neutral).
    """
    pool = list(dict.fromkeys([i for i, _ in dense] + [i for i, _ in lexical]))
    bm25 = dict(lexical)
    text = [i for i in pool if where[i][3] == "text"]
    dense_z = _zscores([(i, cosine.get(i, 0.0)) for i in text])
    lexical_z = _zscores([(i, bm25.get(i, 0.0)) for i in pool])
    return {i: DENSE_WEIGHT * dense_z.get(i, 0.0) + (1 - DENSE_WEIGHT) * lexical_z[i]
            for i in pool}


def _zscores(ranking: Scored) -> dict[int, float]:
    if not ranking:
        return {}
    values = [s for _, s in ranking]
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values) or 1.0
    return {i: (s - mean) / spread for i, s in ranking}


def _rrf(*rankings: Scored, k: int = 60) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for position, (chunk_id, _) in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1 / (k + position)
    return fused
