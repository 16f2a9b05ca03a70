"""Retrieval quality on labelled queries: notesearch's rankers beside baselines, by query kind.

    python bench/quality.py [--notes ../shared/notes] [--queries ../shared/eval/dev.jsonl]
    python bench/quality.py --queries bench/data/heldout-notes.jsonl
    python bench/quality.py --notes ../shared/more-notes \
        --queries bench/data/heldout-more-notes.jsonl

Builds (or brings up to date) two indexes of the notes in --workdir, with and without OCR, and
prints page-level Recall@1/5/10, MRR and nDCG@10 for hybrid, dense and lexical search, the
baselines `notesearch eval` runs (BM25, dense, RRF over the same passages), and an independent
BM25 baseline (the `bm25s` package) over the very same passages, all in this one run.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from notesearch import NoteIndex
from notesearch.evaluate import _mean, evaluate_file, load_queries, score_ranking
from notesearch.records import Hit

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["R@1", "R@5", "R@10", "MRR", "nDCG@10"]


def bm25s_baseline(index: NoteIndex, queries: list[dict], k: int = 10) -> dict:
    """BM25 from the bm25s package over the index's own passages, pages de-duplicated."""
    import bm25s

    rows = index.db.execute(
        "SELECT c.page, c.page_end, c.text, d.name FROM chunks c JOIN documents d "
        "ON d.id = c.doc_id ORDER BY c.id").fetchall()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([r["text"] for r in rows], stopwords="en", show_progress=False),
                    show_progress=False)
    by_kind: dict[str, list] = defaultdict(list)
    for query in queries:
        ids, _ = retriever.retrieve(bm25s.tokenize([query["query"]], stopwords="en",
                                                   show_progress=False),
                                    k=min(100, len(rows)), show_progress=False)
        hits, seen = [], set()
        for i in ids[0]:
            row = rows[int(i)]
            key = (row["name"], row["page"])
            if key not in seen:
                seen.add(key)
                hits.append(Hit(0, 0.0, row["name"], None, "", row["page"], row["page_end"], ""))
        scores = score_ranking(hits[:k], query["relevant"], k)
        by_kind["all"].append(scores)
        by_kind[query["kind"]].append(scores)
    return {kind: _mean(rows_) for kind, rows_ in by_kind.items()}


def print_table(title: str, rankers: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"\n{title}")
    print(f"| ranker | kind | {' | '.join(METRICS)} |")
    print("|---|---|" + "---|" * len(METRICS))
    for name, kinds in rankers.items():
        for kind in sorted(kinds, key=lambda k: (k != "all", k)):
            values = " | ".join(f"{kinds[kind][m]:.2f}" for m in METRICS)
            print(f"| {name} | {kind} | {values} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=Path, default=ROOT.parent / "shared" / "notes")
    parser.add_argument("--queries", type=Path,
                        default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    parser.add_argument("--workdir", type=Path,
                        help="where the indexes live (default: /tmp/notesearch-bench/<notes name>)")
    args = parser.parse_args()
    args.workdir = args.workdir or Path("/tmp/notesearch-bench") / args.notes.resolve().name
    queries = load_queries(args.queries)
    for label, ocr in (("with OCR", True), ("without OCR", False)):
        index_dir = args.workdir / ("index-ocr" if ocr else "index-no-ocr")
        started = time.perf_counter()
        report = NoteIndex.build(args.notes, index_dir, ocr=ocr)
        wall = time.perf_counter() - started
        print(f"\nindex {label}: {report.summary()} (bench wall {wall:.1f} s)")
        with NoteIndex.open(index_dir) as index:
            result = evaluate_file(index, args.queries, k=10)
            rankers = result["rankers"]
            rankers["bm25s (same passages)"] = bm25s_baseline(index, queries)
        print_table(f"{len(queries)} queries, page-level, index {label}", rankers)
        if result["misses"]:
            print("missed by hybrid in the top 10:", ", ".join(m["id"] for m in result["misses"]))


if __name__ == "__main__":
    main()
