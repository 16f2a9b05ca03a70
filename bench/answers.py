"""Answer sentences: what the judged questions are shown now, and what picking them costs.

    python bench/answers.py --index IDX [--dump OUT.json] [--queries ../shared/eval/dev.jsonl]

--dump writes, for every question of bench/data/answers.jsonl, the top hit's file, page and
`answer` (the text judged in its "after" column), and `sentence_dense`: the window picked when
each sentence's meaning is its own cosine with the query (every sentence of the page embedded)
instead of the cosine of the stored passage holding it; bench/data/answers-sentence-dense.jsonl
holds both, judged blind. It also writes `forward` and `forward_0.3`: the window picked when a
query word counts less the later in the window it first appears (by 0.2 or 0.3 a sentence), so
that windows starting at the question's words win over those ending there;
bench/data/answers-forward.jsonl holds all three, judged blind. The timing table runs the dev
queries (k=5, warm, in-process) with the answer step and, alternating in the same run, without it
(`NoteIndex.answers` returning nothing), so both rows see the same machine load. "first pass"
is the first run of each query with answers, before any of its pages were split once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections import Counter
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


def forward_window(position_cost: float):
    """`answer._best_window` where a query word found in the window's k-th sentence (k from 0)
    weighs 1 - k * position_cost: the variant judged in answers-forward.jsonl and dropped."""
    def best_window(page, wanted: set[str]) -> str:
        best = None
        count = len(page.sentences)
        holding = Counter(t for s in page.stems for t in s)
        weight = {t: math.log(1 + count / max(1, holding[t])) for t in wanted}
        total = sum(weight.values())
        for start in range(count):
            first: dict[str, int] = {}
            dense = 0.0
            for end in range(start + 1, min(count, start + answer.MAX_SENTENCES) + 1):
                words = page.words[end] - page.words[start]
                if words > answer.MAX_WORDS and end > start + 1:
                    break
                for term in page.stems[end - 1]:
                    first.setdefault(term, end - 1 - start)
                dense += page.dense[end - 1]
                lexical = sum(weight[t] * (1 - position_cost * k) for t, k in first.items())
                score = (dense / (end - start) + answer.LEXICAL_WEIGHT * lexical / (total or 1)
                         - answer._length_cost(words, end - start))
                if best is None or score > best[0]:
                    best = (score, start, end)
        return "" if best is None else " ".join(page.sentences[best[1]:best[2]])
    return best_window


def forward(index: NoteIndex, query: str, hit, position_cost: float) -> str:
    real = answer._best_window
    answer._best_window = forward_window(position_cost)
    try:
        return index.answers(query, [index.passage(hit.chunk_id)])[0]
    finally:
        answer._best_window = real


def dump(index: NoteIndex, out: Path) -> None:
    rows = [json.loads(line) for line in JUDGED.read_text().splitlines() if line.strip()]
    shown = []
    for row in rows:
        hit = index.search(row["query"], k=1)[0]
        shown.append({"id": row["id"], "file": hit.file, "page": hit.page, "answer": hit.answer,
                      "sentence_dense": sentence_dense(index, row["query"], hit),
                      "forward": forward(index, row["query"], hit, 0.2),
                      "forward_0.3": forward(index, row["query"], hit, 0.3)})
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
