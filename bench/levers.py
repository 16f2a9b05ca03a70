"""Ranking levers tried for issue 15 and dropped, re-run beside today's ranker on the tuning sets.

    python bench/levers.py --notes-index IDX --more-index IDX
                           [--only windows hubs headings tune prf neighbours sections expand rm3]

IDX: indexes built with OCR of ../shared/notes and ../shared/more-notes. Each lever changes the
evidence of the candidates both rankers propose (dense top 100 and BM25 top 100 passages,
captured once per query from the index), or what is made of it, then re-ranks them with
`rank.rank_pages`, hybrid and dense. The tuning sets only: ../shared/eval/dev.jsonl and
bench/data/heldout-*.jsonl and heldout2-*.jsonl (retired into tuning when held-out set 3 was
written); held-out set 3 is measured only for a design that is kept.

- windows: a page's dense evidence mixes in the best cosine of its 1- or 3-sentence windows
  (every window of every page embedded), or takes the larger of the two;
- hubs: a passage's cosine minus `beta` times its mean cosine with its 10 nearest passages
  (hubness reduction, as CSLS): summary pages near every topic should stop winning;
- headings: each passage embedded with the last heading line above it (its section's title);
- tune: the model adapted to the notes before embedding them, one epoch of in-batch-negatives
  contrastive training on (a sentence of a passage, the rest of that passage) pairs (the
  inverse cloze task), then passages and queries embedded with it. Prints its training time;
- prf: pseudo-relevance feedback on the dense side (Rocchio): the query vector plus `beta`
  times the mean vector of the top 3 or 5 passages (of dense's ranking, or standing for
  hybrid's top pages), normalised, then every candidate's cosine taken with it;
- neighbours: a page's score plus `share` times the better score of the pages before and after
  it (when above 0): a topic runs over neighbouring pages of a section;
- sections: a passage's cosine mixed with the cosine of the mean vector of its page's passages
  (or of the pages before, at and after it): the page's or section's topic as a whole;
- expand: each query word that no passage holds joined (OR) by the word of the notes (two
  passages or more) whose MiniLM vector is nearest, if its cosine reaches a floor: BM25 then
  finds "faster" for "quicker";
- rm3: pseudo-relevance feedback on the lexical side (as RM3): the `terms` words weighing most
  in hybrid's top `depth` pages (each passage's term frequencies over its length, summed, times
  IDF) are searched on their own, and every passage's and page's BM25 becomes the query's plus
  `weight` times theirs;
- salience: each query word's BM25 (FTS5's BM25 is a sum over the words) weighed by how close
  its MiniLM vector is to the whole query's, relative to the closest word's (to a `power`,
  above a `floor`): a learner's long question holds words ("lose", "going") that match
  anywhere, and its key words should carry BM25;
- clauses: a question of several clauses (cut at commas, semicolons, question marks, "and",
  "or", "but") embedded clause by clause too: a candidate's cosine mixes the whole question's
  with the mean (or the least) of the clauses' (a page should answer every part).
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from notesearch import NoteIndex, lexical, rank, store, vectors
from notesearch.answer import split_sentences
from notesearch.chunk import is_heading, split_units
from notesearch.evaluate import _mean, load_queries, score_ranking
from notesearch.query import STOPWORDS, Query
from notesearch.records import Hit
from notesearch.search import CANDIDATES

ROOT = Path(__file__).resolve().parents[1]
SETS = [("dev", ROOT.parent / "shared" / "eval" / "dev.jsonl", "notes"),
        ("heldout-notes", ROOT / "bench" / "data" / "heldout-notes.jsonl", "notes"),
        ("heldout-more-notes", ROOT / "bench" / "data" / "heldout-more-notes.jsonl", "more"),
        ("heldout2-notes", ROOT / "bench" / "data" / "heldout2-notes.jsonl", "notes"),
        ("heldout2-more-notes", ROOT / "bench" / "data" / "heldout2-more-notes.jsonl", "more")]
LEVERS = ("windows", "hubs", "headings", "tune", "prf", "neighbours", "sections", "expand", "rm3",
          "salience", "clauses")


@dataclass
class Captured:
    """One query's rank inputs, as `Searcher.search` hands them to `rank.rank_pages`."""

    query: dict
    vector: np.ndarray
    dense: rank.Scored
    lexical: rank.Scored
    places: dict
    cosine: dict[int, float]
    page_bm25: dict
    coverage: float


def capture(index: NoteIndex, path: Path) -> list[Captured]:
    searcher = index.searcher
    out = []
    for labelled in load_queries(path):
        query = Query.parse(labelled["query"])
        vector = searcher.embed(query)
        dense = vectors.search(index.vectors, vector, CANDIDATES, None)
        lexical_hits = lexical.search(index.db, query, CANDIDATES, None,
                                      total=index.vectors.ntotal)
        places = store.passage_places(index.db, {i for i, _ in dense + lexical_hits})
        pages = {(doc, page) for doc, page, _, _ in places.values()}
        stored = vectors.reconstruct(index.vectors, list(places))
        out.append(Captured(labelled, vector, dense, lexical_hits, places,
                            dict(zip(places, (stored @ vector).tolist(), strict=True)),
                            lexical.page_scores(index.db, query, pages),
                            lexical.coverage(lexical.word_counts(index.db, query),
                                             index.vectors.ntotal)))
    return out


Ranker = Callable[[Captured, str], list[rank.PageScore]]  # a variant: one query, one mode


def ranked(item: Captured, mode: str, k: int = 10) -> list[rank.PageScore]:
    """`rank.rank_pages` on the captured inputs, dense re-sorted by the (maybe changed) cosines."""
    dense = sorted(((i, item.cosine[i]) for i, _ in item.dense), key=lambda pair: -pair[1])
    return rank.rank_pages(dense, item.lexical, item.places, item.cosine, mode=mode, k=k,
                           page_bm25=item.page_bm25, coverage=item.coverage)


def by_cosine(cosine_of: Callable[[Captured], dict[int, float]]) -> Ranker:
    """The variant that ranks with each candidate's cosine replaced by `cosine_of`."""
    return lambda item, mode: ranked(replace(item, cosine=cosine_of(item)), mode)


def measure(index: NoteIndex, captured: list[Captured], mode: str,
            variant: Ranker | None = None) -> dict:
    """R@1 / R@5 / MRR of `variant`'s rankings (None: today's ranker)."""
    names = {doc.id: doc.name for doc in store.documents(index.db).values()}
    rows = []
    for item in captured:
        pages = ranked(item, mode) if variant is None else variant(item, mode)
        hits = [Hit(0, 0.0, names[p.doc_id], None, "", p.page, p.page_end, "") for p in pages]
        rows.append(score_ranking(hits, item.query["relevant"], 10))
    return _mean(rows)


def text_passages(index: NoteIndex) -> list[tuple[int, int, int, str]]:
    return [(r["id"], r["doc_id"], r["page"], r["text"]) for r in index.db.execute(
        "SELECT id, doc_id, page, text FROM chunks WHERE kind = 'text' ORDER BY id")]


def window_cosines(index: NoteIndex, size: int) -> Callable[[np.ndarray], dict]:
    """query vector -> (document, page) -> best cosine of the page's `size`-sentence windows."""
    keys, texts = [], []
    for row in index.db.execute("SELECT doc_id, number, text FROM pages"):
        sentences = split_sentences(row["text"] or "")
        for start in range(max(len(sentences) - size + 1, 1)):
            window = " ".join(sentences[start:start + size])
            if len(window.split()) >= 5:
                keys.append((row["doc_id"], row["number"]))
                texts.append(window)
    matrix = np.asarray(index.embedder.encode(texts))

    def best(vector: np.ndarray) -> dict:
        out: dict = {}
        for key, value in zip(keys, (matrix @ vector).tolist(), strict=True):
            out[key] = max(out.get(key, -1.0), value)
        return out
    return best


def lever_windows(index: NoteIndex) -> dict[str, Callable]:
    variants = {}
    for size in (1, 3):
        best_of = window_cosines(index, size)
        for mix in (0.3, 0.5, "max"):
            def cosine_of(item: Captured, best_of=best_of, mix=mix) -> dict[int, float]:
                best = best_of(item.vector)
                out = dict(item.cosine)
                for i, (doc, page, _end, _kind) in item.places.items():
                    window = best.get((doc, page), out[i])
                    out[i] = max(out[i], window) if mix == "max" else \
                        (1 - mix) * out[i] + mix * window
                return out
            variants[f"windows of {size}, {mix}"] = by_cosine(cosine_of)
    return variants


def lever_hubs(index: NoteIndex) -> dict[str, Callable]:
    ids = [row[0] for row in text_passages(index)]
    stored = vectors.reconstruct(index.vectors, ids)
    similar = stored @ stored.T
    np.fill_diagonal(similar, -1.0)
    hubness = dict(zip(ids, np.sort(similar, axis=1)[:, -10:].mean(axis=1).tolist(),
                       strict=True))
    return {f"hubs, beta {beta}": by_cosine(lambda item, beta=beta: {
        i: c - beta * hubness.get(i, 0.0) for i, c in item.cosine.items()})
        for beta in (0.25, 0.5)}


def reembedded(passages: dict[int, np.ndarray], encode: Callable[[list[str]], np.ndarray] | None
               ) -> Ranker:
    """Cosines from other passage vectors (and, with `encode`, other query vectors)."""
    def cosine_of(item: Captured) -> dict[int, float]:
        vector = item.vector if encode is None else encode([item.query["query"]])[0]
        return {i: float(passages[i] @ vector) if i in passages else c
                for i, c in item.cosine.items()}
    return by_cosine(cosine_of)


def lever_headings(index: NoteIndex) -> dict[str, Callable]:
    pages: dict[int, list[tuple[int, str]]] = {}
    for row in index.db.execute("SELECT doc_id, number, text FROM pages ORDER BY doc_id, number"):
        pages.setdefault(row["doc_id"], []).append((row["number"], row["text"] or ""))
    ids, texts = [], []
    for chunk_id, doc, first_page, text in text_passages(index):
        heading, opening = None, text.split()[:3]
        for number, page_text in pages[doc]:
            if number > first_page:
                break
            for unit in split_units(page_text):
                if number == first_page and unit.split()[:3] == opening:
                    break
                if is_heading(unit):
                    heading = unit
        ids.append(chunk_id)
        texts.append(f"{heading}. {text}" if heading and heading not in text[:200] else text)
    matrix = index.embedder.encode(texts)
    return {"headings": reembedded(dict(zip(ids, matrix, strict=True)), None)}


def lever_tune(index: NoteIndex) -> dict[str, Callable]:
    import torch
    from sentence_transformers import SentenceTransformer

    from notesearch.embed import model_location

    rows = text_passages(index)
    variants = {}
    for rate in (2e-5, 5e-5):
        chooser = random.Random(0)
        pairs = []
        for _id, _doc, _page, text in rows:
            sentences = [s for s in split_sentences(text) if len(s.split()) >= 6]
            if len(sentences) >= 3:
                sentence = chooser.choice(sentences)
                pairs.append((sentence, text if chooser.random() < 0.1 else
                              text.replace(sentence, " ")))
        chooser.shuffle(pairs)
        model = SentenceTransformer(model_location(index.model_name), device="cpu")
        optimiser = torch.optim.AdamW(model.parameters(), lr=rate)
        started = time.perf_counter()
        model.train()
        for start in range(0, len(pairs), 32):
            batch = pairs[start:start + 32]
            sides = [torch.nn.functional.normalize(model(model.preprocess(list(side)))[
                "sentence_embedding"], dim=-1) for side in zip(*batch, strict=True)]
            loss = torch.nn.functional.cross_entropy(20 * sides[0] @ sides[1].T,
                                                     torch.arange(len(batch)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        print(f"  tune, rate {rate}: {len(pairs)} pairs trained in "
              f"{time.perf_counter() - started:.0f} s")

        def encode(texts: list[str], model=model) -> np.ndarray:
            return model.encode(texts, normalize_embeddings=True)
        matrix = encode([text for *_, text in rows])
        variants[f"tune, rate {rate}"] = reembedded(
            dict(zip([r[0] for r in rows], matrix, strict=True)), encode)
    return variants


def lever_prf(index: NoteIndex) -> dict[str, Callable]:
    def top_passages(item: Captured, depth: int, source: str) -> list[int]:
        if source == "dense":
            ranked = [i for i, _ in sorted(item.dense, key=lambda pair: -item.cosine[pair[0]])]
        else:
            ranked = [p.chunk_id for p in rank.rank_pages(
                item.dense, item.lexical, item.places, item.cosine, "hybrid", depth,
                page_bm25=item.page_bm25, coverage=item.coverage)]
        return [i for i in ranked if item.places[i][3] == "text"][:depth]

    variants = {}
    for source in ("dense", "hybrid"):
        for depth in (3, 5):
            for beta in (0.3, 0.6):
                def cosine_of(item: Captured, source=source, depth=depth, beta=beta) -> dict:
                    top = top_passages(item, depth, source)
                    if not top:
                        return item.cosine
                    moved = item.vector + beta * vectors.reconstruct(index.vectors, top).mean(0)
                    moved = moved / np.linalg.norm(moved)
                    ids = list(item.cosine)
                    stored = vectors.reconstruct(index.vectors, ids)
                    return dict(zip(ids, (stored @ moved).tolist(), strict=True))
                variants[f"prf from {source} top {depth}, beta {beta}"] = by_cosine(cosine_of)
    return variants


def lever_neighbours(index: NoteIndex) -> dict[str, Ranker]:
    def smoothed(item: Captured, mode: str, share: float) -> list[rank.PageScore]:
        pages = ranked(item, mode, k=1000)
        score = {(p.doc_id, p.page): p.score for p in pages}
        floor = min(score.values(), default=0.0)

        def lifted(p: rank.PageScore) -> float:
            beside = max(score.get((p.doc_id, p.page - 1), floor),
                         score.get((p.doc_id, p.page + 1), floor))
            return p.score + share * max(beside, 0.0)
        return sorted(pages, key=lambda p: -lifted(p))[:10]
    return {f"neighbours, {share}": (lambda item, mode, share=share: smoothed(item, mode, share))
            for share in (0.1, 0.2, 0.3)}


def lever_sections(index: NoteIndex) -> dict[str, Ranker]:
    rows = [(i, doc, page) for i, doc, page, _text in text_passages(index)]
    stored = dict(zip([i for i, _, _ in rows],
                      vectors.reconstruct(index.vectors, [i for i, _, _ in rows]), strict=True))
    on_page: dict[tuple[int, int], list[int]] = {}
    for i, doc, page in rows:
        on_page.setdefault((doc, page), []).append(i)
    variants = {}
    for span in (0, 1):
        means = {}
        for doc, page in on_page:
            mean = np.mean([stored[i] for n in range(page - span, page + span + 1)
                            for i in on_page.get((doc, n), [])], axis=0)
            means[(doc, page)] = mean / np.linalg.norm(mean)
        for mix in (0.2, 0.5):
            def cosine_of(item: Captured, means=means, mix=mix) -> dict[int, float]:
                out = dict(item.cosine)
                for i, (doc, page, _end, kind) in item.places.items():
                    if kind == "text" and (doc, page) in means:
                        out[i] = (1 - mix) * out[i] + mix * float(means[(doc, page)] @ item.vector)
                return out
            variants[f"sections of {2 * span + 1} pages, {mix}"] = by_cosine(cosine_of)
    return variants


def relexed(index: NoteIndex, item: Captured, lexical_hits: rank.Scored,
            page_bm25: dict[tuple[int, int], float]) -> Captured:
    """`item` with another lexical ranking: the passages it adds get their places and cosines,
    and `page_bm25` is kept for the candidates' pages."""
    places = {**item.places, **store.passage_places(
        index.db, {i for i, _ in lexical_hits} - set(item.places))}
    new = [i for i in places if i not in item.cosine]
    cosine = {**item.cosine, **dict(zip(new, (vectors.reconstruct(index.vectors, new)
                                              @ item.vector).tolist(), strict=True))}
    pages = {(doc, page) for doc, page, _, _ in places.values()}
    return replace(item, lexical=lexical_hits, places=places, cosine=cosine,
                   page_bm25={key: s for key, s in page_bm25.items() if key in pages})


def lever_expand(index: NoteIndex) -> dict[str, Ranker]:
    counts = Counter(word for (text,) in index.db.execute("SELECT text FROM chunks")
                     for word in set(re.findall(r"[a-z][a-z-]{2,}", (text or "").lower()))
                     if word not in STOPWORDS)
    vocabulary = sorted(word for word, count in counts.items() if count >= 2)
    matrix = np.asarray(index.embedder.encode(vocabulary))

    def expanded(item: Captured, mode: str, floor: float) -> list[rank.PageScore]:
        query = Query.parse(item.query["query"])
        held = store.passages_holding(index.db, query.terms)
        absent = [term for term, count in zip(query.terms, held, strict=True) if not count]
        extra = []
        for vector in (index.embedder.encode(absent) if absent else []):
            similar = matrix @ vector
            best = int(np.argmax(similar))
            if similar[best] >= floor and vocabulary[best] not in query.terms:
                extra.append(vocabulary[best])
        if not extra:
            return ranked(item, mode)
        match = query.match(query.terms + tuple(dict.fromkeys(extra)))
        lexical_hits = store.bm25_passages(index.db, match, CANDIDATES)
        return ranked(relexed(index, item, lexical_hits, dict(store.bm25_pages(index.db, match))),
                      mode)
    return {f"expand absent words, cosine >= {floor}": (
        lambda item, mode, floor=floor: expanded(item, mode, floor)) for floor in (0.5, 0.7)}


def lever_rm3(index: NoteIndex) -> dict[str, Ranker]:
    total = index.vectors.ntotal
    texts = dict(index.db.execute("SELECT id, text FROM chunks"))
    holding: dict[str, int] = {}

    def idf(words: list[str]) -> dict[str, float]:
        unknown = [w for w in words if w not in holding]
        if unknown:
            holding.update(zip(unknown, store.passages_holding(index.db, unknown), strict=True))
        return {w: np.log(1 + total / holding[w]) for w in words if holding[w]}

    def fed_back(item: Captured, mode: str, depth: int, terms: int, weight: float
                 ) -> list[rank.PageScore]:
        query = Query.parse(item.query["query"])
        top = {(p.doc_id, p.page) for p in ranked(item, "hybrid", k=depth)}
        passages = [i for i, (doc, page, _end, _kind) in item.places.items()
                    if (doc, page) in top]
        weights: Counter = Counter()
        for i in passages:
            words = [w for w in re.findall(r"[a-z][a-z-]{2,}", (texts[i] or "").lower())
                     if w not in STOPWORDS and w not in query.terms]
            for word, count in Counter(words).items():
                weights[word] += count / max(len(words), 1)
        rarity = idf(list(weights))
        chosen = sorted(rarity, key=lambda w: -weights[w] * rarity[w])[:terms]
        if not chosen or mode == "dense":
            return ranked(item, mode)
        match = query.match(tuple(chosen))
        extra = dict(store.bm25_passages(index.db, match, CANDIDATES))
        lexical_scores = dict(item.lexical)
        for i, score in extra.items():
            lexical_scores[i] = lexical_scores.get(i, 0.0) + weight * score
        page_bm25 = dict(item.page_bm25)
        for key, score in store.bm25_pages(index.db, match):
            page_bm25[key] = page_bm25.get(key, 0.0) + weight * score
        lexical_hits = sorted(lexical_scores.items(), key=lambda pair: -pair[1])
        return ranked(relexed(index, item, lexical_hits, page_bm25), mode)
    return {f"rm3, top {depth} pages, {terms} words, weight {weight}": (
        lambda item, mode, depth=depth, terms=terms, weight=weight:
        fed_back(item, mode, depth, terms, weight))
        for depth in (3, 5) for terms in (5, 10) for weight in (0.2, 0.5)}


def lever_salience(index: NoteIndex) -> dict[str, Ranker]:
    per_term: dict[str, tuple[dict[int, float], dict[tuple[int, int], float]]] = {}

    def scores_of(term: str) -> tuple[dict[int, float], dict[tuple[int, int], float]]:
        if term not in per_term:
            match = f'"{term}"'
            per_term[term] = (dict(store.bm25_passages(index.db, match, 100_000)),
                              dict(store.bm25_pages(index.db, match)))
        return per_term[term]

    def weighed(item: Captured, mode: str, power: float, floor: float) -> list[rank.PageScore]:
        query = Query.parse(item.query["query"])
        if mode == "dense" or len(query.terms) < 2:
            return ranked(item, mode)
        closeness = np.clip(index.embedder.encode(list(query.terms)) @ item.vector, 0, None)
        top = float(closeness.max()) or 1.0
        weight = {t: floor + (1 - floor) * (float(c) / top) ** power
                  for t, c in zip(query.terms, closeness, strict=True)}
        passage: Counter = Counter()
        page: Counter = Counter()
        for term in query.terms:
            passages, pages = scores_of(term)
            for i, score in passages.items():
                passage[i] += weight[term] * score
            for key, score in pages.items():
                page[key] += weight[term] * score
        return ranked(relexed(index, item, passage.most_common(CANDIDATES), page), mode)
    return {f"salience, power {power}, floor {floor}": (
        lambda item, mode, power=power, floor=floor: weighed(item, mode, power, floor))
        for power in (1, 2) for floor in (0.0, 0.3)}


_CLAUSE = re.compile(r"[,;?]|\b(?:and|or|but)\b", re.IGNORECASE)


def lever_clauses(index: NoteIndex) -> dict[str, Ranker]:
    def mixed(item: Captured, how: str, mix: float) -> dict[int, float]:
        parts = [p.strip() for p in _CLAUSE.split(item.query["query"])
                 if len(p.split()) >= 3]
        if len(parts) < 2:
            return item.cosine
        ids = list(item.cosine)
        stored = vectors.reconstruct(index.vectors, ids)
        each = stored @ np.asarray(index.embedder.encode(parts)).T  # passages x clauses
        part = each.mean(1) if how == "mean" else each.min(1)
        return {i: (1 - mix) * item.cosine[i] + mix * float(c)
                for i, c in zip(ids, part, strict=True)}
    return {f"clauses, {how}, {mix}": by_cosine(
        lambda item, how=how, mix=mix: mixed(item, how, mix))
        for how in ("mean", "least") for mix in (0.3, 0.5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes-index", required=True)
    parser.add_argument("--more-index", required=True)
    parser.add_argument("--only", nargs="+", choices=LEVERS, default=list(LEVERS))
    args = parser.parse_args()
    opened = {"notes": NoteIndex.open(args.notes_index),
              "more": NoteIndex.open(args.more_index)}
    captured = {name: capture(opened[corpus], path) for name, path, corpus in SETS}
    print("| lever | " + " | ".join(f"{name} hybrid | dense" for name, _, _ in SETS) + " |")
    print("|---|" + "---|---|" * len(SETS))

    def row(label: str, variant: dict[str, Ranker | None]) -> None:
        cells = []
        for name, _path, corpus in SETS:
            for mode in ("hybrid", "dense"):
                m = measure(opened[corpus], captured[name], mode, variant[name])
                cells.append(f"{m['R@1']:.2f} / {m['R@5']:.2f} / {m['MRR']:.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)

    row("today's ranker", {name: None for name, _, _ in SETS})
    makers = {"windows": lever_windows, "hubs": lever_hubs, "headings": lever_headings,
              "tune": lever_tune, "prf": lever_prf, "neighbours": lever_neighbours,
              "sections": lever_sections, "expand": lever_expand,
              "rm3": lever_rm3, "salience": lever_salience,
              "clauses": lever_clauses}
    for lever in args.only:
        per_corpus = {corpus: makers[lever](index) for corpus, index in opened.items()}
        for label in per_corpus["notes"]:
            row(label, {name: per_corpus[corpus][label] for name, _, corpus in SETS})
    for index in opened.values():
        index.close()


if __name__ == "__main__":
    main()
