"""Answer sentences: what the judged questions are shown now, and what picking them costs.

    python bench/answers.py --index IDX [--dump OUT.json] [--queries ../shared/eval/dev.jsonl]

--dump writes, for every question of bench/data/answers.jsonl, the top hit's file, page and
`answer` (the text judged in its "after" column), and `sentence_dense`: the window picked when
each sentence's meaning is its own cosine with the query (every sentence of the page embedded)
instead of the cosine of the stored passage holding it; bench/data/answers-sentence-dense.jsonl
holds both, judged blind. The timing table runs the dev queries
(k=5, warm, in-process) with the answer step and, alternating in the same run, without it
(`NoteIndex.answers` returning nothing), so both rows see the same machine load. "first pass"
is the first run of each query with answers, before any of its pages were split once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from notesearch import NoteIndex, answer, store
from notesearch.index import NoteIndex as IndexClass
from notesearch.query import Query

HERE = Path(__file__).resolve().parent
JUDGED = HERE / "data" / "answers.jsonl"
DEV = HERE.parents[1] / "shared" / "eval" / "dev.jsonl"


def sentence_dense(index: NoteIndex, query: str, hit) -> str:
    """The answer window when each sentence counts with its own cosine (the variant judged in
    answers-sentence-dense.jsonl and dropped: 12 answers judged yes against 17)."""
    parsed = Query.parse(query)
    query_vector = index.embedder.encode([parsed.embedding_text])[0]
    text = hit.text if hit.kind == "figure" else store.text_of_pages(
        index.db, [(hit.doc_id, hit.page, hit.page_end)])[0]
    split = answer._sentences(text, ())
    if not split.sentences:
        return ""
    dense = (index.embedder.encode(split.sentences) @ query_vector).tolist()
    wanted = {answer.stem(t) for t in parsed.terms}
    page = answer._Page(split.sentences, [s & wanted for s in split.stems], dense, split.words)
    return answer._best_window(page, wanted)


def dump(index: NoteIndex, out: Path) -> None:
    rows = [json.loads(line) for line in JUDGED.read_text().splitlines() if line.strip()]
    shown = []
    for row in rows:
        hit = index.search(row["query"], k=1)[0]
        shown.append({"id": row["id"], "file": hit.file, "page": hit.page, "answer": hit.answer,
                      "sentence_dense": sentence_dense(index, row["query"], hit)})
    out.write_text(json.dumps(shown, indent=1, ensure_ascii=False))
    print(f"wrote {len(shown)} answers to {out}")


def timing(index: NoteIndex, queries: list[str], repeats: int) -> None:
    real = IndexClass.answers

    def skipped(self, query, passages, query_vector=None):  # the baseline: no answer step
        return [""] * len(passages)

    index.search("warm up the model", k=5)
    answer._sentences.cache_clear()
    seconds: dict[str, list[float]] = {"with answers": [], "without": [], "first pass": []}
    try:
        for repeat in range(repeats):
            for query in queries:
                order = ("with answers", "without") if repeat % 2 == 0 else ("without",
                                                                              "with answers")
                for label in order:
                    IndexClass.answers = real if label == "with answers" else skipped
                    started = time.perf_counter()
                    index.search(query, k=5)
                    took = time.perf_counter() - started
                    seconds[label].append(took)
                    if repeat == 0 and label == "with answers":
                        seconds["first pass"].append(took)
    finally:
        IndexClass.answers = real
    base = statistics.median(seconds["without"])
    print(f"{len(queries)} queries x {repeats}, k=5, load {os.getloadavg()[0]:.2f}")
    print(f"{'':14s} {'n':>4s} {'p50 ms':>7s} {'p95 ms':>7s} {'p50 ratio':>9s}")
    for label, values in seconds.items():
        ordered = sorted(values)
        p50 = statistics.median(values)
        print(f"{label:14s} {len(values):4d} {p50 * 1000:7.1f} "
              f"{ordered[int(0.95 * (len(ordered) - 1))] * 1000:7.1f} {p50 / base:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--queries", default=str(DEV))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dump", type=Path)
    args = parser.parse_args()
    with NoteIndex.open(args.index) as index:
        if args.dump:
            dump(index, args.dump)
        queries = [json.loads(line)["query"]
                   for line in Path(args.queries).read_text().splitlines() if line.strip()]
        timing(index, queries, args.repeats)


if __name__ == "__main__":
    main()
