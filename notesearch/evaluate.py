"""`notesearch eval`: page-level retrieval metrics on labelled queries, beside baselines.

A hit counts when any page it cites is a labelled page of the same file. Recall@k is the share
of queries with a relevant page in the top k; nDCG@10 credits each relevant page once. The
`-k` cut-off applies to every metric: nothing ranked below it counts.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path, PurePosixPath

from .errors import BadEvalFile, BadQuery
from .records import Hit

BASELINES = {"baseline BM25": "lexical", "baseline dense": "dense", "baseline RRF": "rrf"}


def load_queries(path: Path) -> list[dict]:
    """Parse a JSON-lines file of labelled queries, naming the first bad line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadEvalFile(f"cannot read {path}: {exc}") from exc
    queries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            queries.append(_labelled(line, number))
        except ValueError as exc:
            raise BadEvalFile(f"{path}, line {number}: {exc}") from exc
    if not queries:
        raise BadEvalFile(f"{path} holds no queries")
    return queries


def _labelled(line: str, number: int) -> dict:
    """One line's query, or ValueError saying what the line lacks."""
    try:
        item = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(item, dict):
        raise ValueError('each line must be one JSON object, {"query": ..., "relevant": [...]}')
    if not isinstance(item.get("query"), str) or not item["query"].strip():
        raise ValueError("'query' must be a non-empty string")
    relevant = item.get("relevant")
    if not isinstance(relevant, list) or not relevant:
        raise ValueError("'relevant' must be a non-empty list of {file, page}")
    pairs = set()
    for answer in relevant:
        if not isinstance(answer, dict) or not isinstance(answer.get("file"), str):
            raise ValueError('each relevant item must be {"file": ..., "page": N}')
        page = answer.get("page")
        if isinstance(page, str) and page.strip().isascii() and page.strip().isdecimal():
            page = int(page)
        if not isinstance(page, int) or isinstance(page, bool) or page < 1:
            raise ValueError(f"'page' must be a page number (1 for the first), not {page!r}")
        pairs.add((PurePosixPath(answer["file"]).name, page))
    return {"id": str(item.get("id", number)), "query": item["query"],
            "kind": str(item.get("kind", "all")), "relevant": pairs}


def _credited(hit: Hit, relevant: set[tuple[str, int]]) -> set[tuple[str, int]]:
    name = PurePosixPath(hit.file).name
    return {(name, p) for p in range(hit.page, hit.page_end + 1)} & relevant


def score_ranking(hits: list[Hit], relevant: set[tuple[str, int]], k: int) -> dict[str, float]:
    """One query's metrics. Only the top `k` hits count, in every metric: with k = 1, R@5 and
    nDCG@10 see the first hit alone, as a user reading one result would."""
    hits = hits[:k]
    first = next((n for n, h in enumerate(hits, start=1) if _credited(h, relevant)), None)
    gained: set[tuple[str, int]] = set()
    dcg = 0.0
    for n, hit in enumerate(hits[:10], start=1):
        new = _credited(hit, relevant) - gained
        if new:
            dcg += 1 / math.log2(n + 1)
            gained |= new
    ideal = sum(1 / math.log2(n + 1) for n in range(1, min(len(relevant), k, 10) + 1))
    return {
        "R@1": float(first is not None and first <= 1),
        "R@5": float(first is not None and first <= 5),
        "R@10": float(first is not None and first <= 10),
        "MRR": 1 / first if first else 0.0,
        "nDCG@10": dcg / ideal,
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {m: sum(r[m] for r in rows) / len(rows) for m in rows[0]}


def evaluate_file(index, path: Path, k: int = 10, mode: str = "hybrid") -> dict:
    """Run every labelled query with `mode`, the other modes and the baselines; one table.

    `missing_files` lists labelled files the index does not hold: their queries cannot score,
    which usually means the wrong index or notes folder, not a bad ranker.
    """
    if k < 1:
        raise BadQuery(f"k must be at least 1, not {k}")
    queries = load_queries(path)
    indexed = {PurePosixPath(d["file"]).name for d in index.status()["documents"]}
    missing = sorted({name for q in queries for name, _ in q["relevant"]} - indexed)
    rankers = {mode: mode, **{m: m for m in ("hybrid", "dense", "lexical") if m != mode},
               **BASELINES}
    table: dict[str, dict[str, dict[str, float]]] = {}
    misses = []
    for label, ranker in rankers.items():
        by_kind: dict[str, list[dict[str, float]]] = defaultdict(list)
        for query in queries:
            hits = index.search(query["query"], k=max(k, 10), mode=ranker)
            scores = score_ranking(hits, query["relevant"], k)
            by_kind["all"].append(scores)
            by_kind[query["kind"]].append(scores)
            if label == mode and not scores["MRR"]:  # no relevant page in the top k
                misses.append({"id": query["id"], "query": query["query"]})
        table[label] = {kind: _mean(rows) for kind, rows in sorted(
            by_kind.items(), key=lambda kv: (kv[0] != "all", kv[0]))}
    return {"queries": len(queries), "k": k, "mode": mode, "rankers": table, "misses": misses,
            "missing_files": missing}
