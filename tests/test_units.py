"""Pure stages tested with plain values: course names, text clean-up, chunking, fusion."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from notesearch.chunk import MAX_WORDS, chunk_pages, is_contents
from notesearch.courses import recognise_course
from notesearch.errors import BadEvalFile, BadQuery
from notesearch.evaluate import load_queries, score_ranking
from notesearch.query import Query, terms
from notesearch.rank import CONFIDENT_COSINE, PageScore, _keep_in_top, _near_top, rank_pages
from notesearch.records import Hit, Page
from notesearch.snippet import snippet
from notesearch.textnorm import clean_page_text, normalise


@pytest.mark.parametrize("name, course", [
    ("Neural Networks and Deep Learning.pdf", 1),
    ("Course 2 - Improving Deep Learning Networks.pdf", 2),
    ("Structuring your Machine Learning Project.pdf", 3),
    ("Convolutional Neural Network.pdf", 4),
    ("Course 5 - Sequence Models.pdf", 5),
    ("adeboye-c1-nn-dl.pdf", 1),
    ("baskaran-c2w3-hyperparams.pdf", 2),
    ("cao-c4-cnn.pdf", 4),
    ("amidi-cs229-super-cheatsheet.pdf", None),
    ("pigott-ml-coursera-notes.pdf", None),
    ("banana bread.pdf", None),
    ("CNN_Notes.dvi", 4),  # a PDF's metadata title: "_" separates words too
    ("rnn_basics.md", 5),
    ("scnn-paper.pdf", None),
])
def test_course_is_recognised_from_file_names(name, course):
    assert recognise_course(name) == course


def test_normalise_repairs_ligatures_and_invisible_characters():
    assert normalise("e\ufb03cient \ufb01lter\u200b") == "efficient filter"


def test_clean_page_text_rejoins_hyphenated_words_and_glyph_runs():
    text = clean_page_text("regulari-\nzation helps\n\nJ\n=\n1\nm\nthe end")
    assert "regularization helps" in text
    assert "J = 1 m" in text


def test_chunks_stay_in_size_and_know_their_pages():
    sentence = "Gradient descent takes a small step downhill on the cost surface. "
    pages = [Page(1, sentence * 40), Page(2, ""), Page(3, sentence * 3 + "\nShort tail here.")]
    chunks = chunk_pages(pages)
    assert chunks, "text pages must yield passages"
    assert all(len(c.text.split()) <= MAX_WORDS + 30 for c in chunks)
    assert {c.page for c in chunks} <= {1, 3}
    assert chunks[0].page == 1 and chunks[-1].page_end == 3


def test_short_page_tail_joins_the_next_page_and_records_both():
    pages = [Page(1, "Momentum averages past gradients to damp"),
             Page(2, "the oscillations. " + "It speeds up learning considerably. " * 10)]
    chunks = chunk_pages(pages)
    assert (chunks[0].page, chunks[0].page_end) == (1, 2)
    assert chunks[0].text.startswith("Momentum averages")


def test_a_table_of_contents_yields_no_passage():
    contents = "COURSE 5: SEQUENCE MODELS\n2\n\nWhy sequence models\n2\nNotation\n2\n" \
        "Gated Recurrent Unit (GRU)\n14\nLong Short Term Memory (LSTM)\n16\n"
    dotted = "Contents\n1 Supervised Learning 2\n1.1 Introduction . . . . . 2\n" \
        "1.2 Notations . . . . 2\n1.3 Linear models . . . 3\n1.4 SVMs . . . 4\n"
    prose = "In layer 2 we compute the activations of layer 2.\n" * 3 + \
        "The weights are initialised randomly to break symmetry between units.\n" * 12
    assert is_contents(contents) and is_contents(dotted) and not is_contents(prose)
    assert chunk_pages([Page(1, contents), Page(2, dotted)]) == []
    assert chunk_pages([Page(1, prose)])


def test_query_terms_drop_stopwords_and_fts_syntax():
    assert terms('what is "dropout" AND NEAR(keep_prob*) -x:') == (
        "dropout", "near", "keep", "prob", "x")
    assert terms("to be or not") == ("to", "be", "or", "not")
    assert Query.parse('say "no" -x').match() == '"say" OR "no" OR "x"'
    with pytest.raises(BadQuery, match="empty"):
        Query.parse(" \u200b ")


def test_pages_are_ranked_once_with_their_best_passage():
    where = {1: (1, 5, 5, "text"), 2: (1, 5, 5, "text"), 3: (1, 6, 7, "text"),
             4: (1, 7, 7, "text"), 5: (2, 1, 1, "text")}
    dense = [(1, 0.9), (3, 0.5), (4, 0.45), (5, 0.1)]
    lexical = [(2, 12.0), (4, 6.0)]
    cosine = {1: 0.9, 2: 0.4, 3: 0.5, 4: 0.45, 5: 0.1}
    pages = rank_pages(dense, lexical, where, cosine, "hybrid", k=10)
    keys = [(p.doc_id, p.page) for p in pages]
    assert len(keys) == len(set(keys))
    assert keys[0] == (1, 5)
    covered = [(p.doc_id, n) for p in pages for n in range(p.page, p.page_end + 1)]
    assert len(covered) == len(set(covered))  # pp. 6-7 is not shown beside p. 7
    assert len(pages) == 3
    assert [p.confident for p in pages] == [c >= CONFIDENT_COSINE for c in
                                           (p.cosine for p in pages)]
    assert pages[-1].confident is False


def test_confidence_needs_words_the_notes_hold_and_more_cosine_from_a_slide():
    where = {1: (1, 1, 1, "text"), 2: (1, 2, 2, "figure"), 3: (1, 3, 3, "figure")}
    cosine = {1: 0.5, 2: 0.38, 3: 0.45}
    dense = sorted(cosine.items(), key=lambda pair: -pair[1])
    for mode in ("hybrid", "dense"):
        pages = {p.page: p.confident for p in rank_pages(dense, [], where, cosine, mode, k=3)}
        assert pages == {1: True, 2: False, 3: True}
        salad = rank_pages(dense, [], where, cosine, mode, k=3, coverage=0.05)
        assert not any(p.confident for p in salad)


def _fused(n: int) -> list[PageScore]:
    """Pages 1..n of one document in fused order (score n - page)."""
    return [PageScore(page, 1, page, page, float(n - page), 0.5) for page in range(1, n + 1)]


@pytest.mark.parametrize("lexical_of_8, lexical_top, top_five", [
    (0.1, 7, [1, 2, 3, 4, 8]),    # dense's 2nd page, lexically average: kept in the top 5;
    #                               lexical's top page 7, below dense's mean: not kept
    (-0.5, 7, [1, 2, 3, 4, 5]),   # lexically below the candidates' mean: free to fall
    (-0.5, 6, [1, 2, 3, 4, 6]),   # lexical's top page with dense z >= 0: kept as well
    (0.1, 6, [1, 2, 3, 4, 6]),    # six near-top pages for five slots: the best fused five
])
def test_near_top_pages_of_either_ranker_stay_in_the_top_five(lexical_of_8, lexical_top,
                                                              top_five):
    ranked = _fused(9)
    dense_z = {(1, p): z for p, z in [(1, 1.0), (8, 2.0), (2, 0.9), (3, 0.8), (4, 0.7),
                                      (5, -0.1), (6, 0.2), (7, -0.3), (9, -1.0)]}
    lexical_z = {(1, p): 0.0 for p in range(1, 10)}
    lexical_z[(1, 8)] = lexical_of_8
    lexical_z[(1, lexical_top)] = 3.0
    lexical_z[(1, 1)] = 2.0
    kept = _keep_in_top(ranked, _near_top(dense_z, lexical_z))
    assert [p.page for p in kept[:5]] == top_five
    assert sorted(p.page for p in kept) == list(range(1, 10))
    assert [p.page for p in kept[5:]] == [p for p in range(1, 10) if p not in top_five]


@pytest.mark.parametrize("mode, first", [("dense", 1), ("lexical", 2), ("rrf", 2)])
def test_single_ranker_modes_and_rrf_order(mode, first):
    where = {1: (1, 1, 1, "text"), 2: (1, 2, 2, "text"), 3: (1, 3, 3, "text")}
    dense, lexical = [(1, 0.8), (2, 0.7), (3, 0.1)], [(2, 9.0), (3, 1.0)]
    pages = rank_pages(dense, lexical, where, dict(dense), mode, k=3)
    assert pages[0].page == first


def test_hybrid_takes_figure_text_as_lexical_evidence_only():
    where = {1: (1, 1, 1, "figure"), 2: (1, 2, 2, "text"), 3: (1, 3, 3, "text")}
    dense = [(1, 0.9), (2, 0.5), (3, 0.4)]
    assert rank_pages(dense, [], where, dict(dense), "hybrid", k=1)[0].page == 2
    assert rank_pages(dense, [(1, 9.0), (3, 1.0)], where, dict(dense), "hybrid", k=1)[0].page == 1
    assert rank_pages(dense, [], where, dict(dense), "dense", k=1)[0].page == 1


def test_hybrid_weighs_whole_pages_and_stands_for_them_with_their_best_passage():
    # Page 1: one strong passage. Page 2: prose and a slide that each hold half the query.
    where = {1: (1, 1, 1, "text"), 2: (1, 2, 2, "text"), 3: (1, 2, 2, "figure"),
             4: (1, 3, 3, "text")}
    dense = [(1, 0.5), (2, 0.5), (4, 0.2)]
    lexical = [(1, 8.0), (2, 6.0), (3, 6.0), (4, 1.0)]
    cosine = {1: 0.5, 2: 0.5, 3: 0.1, 4: 0.2}
    passages_only = rank_pages(dense, lexical, where, cosine, "hybrid", k=3)
    assert [p.page for p in passages_only] == [1, 2, 3]
    whole = {(1, 1): 8.0, (1, 2): 12.0, (1, 3): 1.0}
    pages = rank_pages(dense, lexical, where, cosine, "hybrid", k=3, page_bm25=whole)
    assert [p.page for p in pages] == [2, 1, 3]
    assert pages[0].chunk_id == 2  # the prose passage stands for the page, not the slide


def test_a_passage_is_embedded_with_its_section_heading():
    from notesearch.records import Chunk

    cut = Chunk("takes the max value in each region", 2, 2, heading="Pooling layers")
    assert cut.embedded_text == "Pooling layers. takes the max value in each region"
    opening = Chunk("Pooling layers reduce the size", 2, 2, heading="Pooling layers")
    assert opening.embedded_text == opening.text
    slide = Chunk("MAX POOL 2x2", 2, 2, kind="figure", heading="Pooling layers")
    assert slide.embedded_text == slide.text


def test_snippet_marks_query_words_in_a_window():
    text = " ".join(["filler"] * 100 + ["Dropout", "regularization", "works"] + ["x"] * 100)
    parts = snippet(text, "dropout regularisation")
    marked = [s for s, match in parts if match]
    assert marked == ["Dropout", "regularization"]
    assert parts[0][0] == "… "


def test_eval_file_errors_name_the_line(tmp_path):
    good = {"id": "a", "query": "q", "kind": "keyword",
            "relevant": [{"file": "x.pdf", "page": 1}]}
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(BadEvalFile, match="line 2"):
        load_queries(path)
    path.write_text(json.dumps({**good, "relevant": []}) + "\n")
    with pytest.raises(BadEvalFile, match="line 1"):
        load_queries(path)
    # each says what the line lacks, not Python's error ("'page'", "'list' object has no...")
    for bad, says in (({**good, "relevant": [{"file": "x.pdf"}]}, "'page' must be a page number"),
                      ([good], "each line must be one JSON object"),
                      ({**good, "relevant": [{"file": "x.pdf", "page": "abc"}]}, "not 'abc'"),
                      ({**good, "relevant": [{"file": "x.pdf", "page": 0}]}, "not 0"),
                      ({**good, "relevant": [{"file": "x.pdf", "page": "²"}]}, "not '²'"),
                      ({**good, "relevant": ["x.pdf"]}, 'must be {"file": ..., "page": N}')):
        path.write_text(json.dumps(bad) + "\n")
        with pytest.raises(BadEvalFile, match=re.escape(says)):
            load_queries(path)
    path.write_text(json.dumps({**good, "relevant": [{"file": "x.pdf", "page": "3"}]}) + "\n")
    assert load_queries(path)[0]["relevant"] == {("x.pdf", 3)}


def test_score_ranking_counts_page_ranges_once():
    def hit(page, end):
        return Hit(0, 0.0, "notes/x.pdf", None, "", page, end, "")
    relevant = {("x.pdf", 3), ("x.pdf", 4)}
    scores = score_ranking([hit(1, 1), hit(3, 4), hit(4, 4)], relevant, 10)
    assert scores["R@1"] == 0 and scores["R@5"] == 1 and scores["MRR"] == 0.5
    assert 0 < scores["nDCG@10"] < 1
    at_one = score_ranking([hit(1, 1), hit(3, 4), hit(4, 4)], relevant, 1)
    assert at_one == {"R@1": 0, "R@5": 0, "R@10": 0, "MRR": 0, "nDCG@10": 0}, \
        "with k = 1 nothing below the first hit counts, in any metric"
    assert score_ranking([hit(3, 3), hit(4, 4)], relevant, 1)["nDCG@10"] == 1.0, \
        "a relevant first hit is all k = 1 can ask"


def forty_passages(tmp_path):
    """A store of 40 passages: the first about learning rates and dropout, every one about
    learning (a word all of them hold)."""
    import sqlite3

    from notesearch import store

    db = sqlite3.connect(tmp_path / "x.db")
    store.migrate(db)
    rows = [("learning rates and dropout" if n == 0 else f"learning curves {n}",)
            for n in range(40)]
    db.executemany("INSERT INTO chunks (doc_id, page, page_end, kind, heading, text, text_hash, "
                   "vector) VALUES (1, 1, 1, 'text', '', ?, '', x'')", rows)
    return db


def test_large_indexes_skip_terms_most_passages_hold(tmp_path, monkeypatch):
    from notesearch import lexical

    db = forty_passages(tmp_path)
    assert lexical.selective(db, ("learning", "dropout"), total=40) == ("dropout",)
    assert lexical.selective(db, ("learned",), total=40) == ("learned",)  # all common: kept
    query = Query.parse("learning dropout")
    assert len(lexical.search(db, query, 5, total=40)) == 5  # small: all terms
    monkeypatch.setattr(lexical, "LARGE_INDEX", 10)
    assert [i for i, _ in lexical.search(db, query, 5, total=40)] == [1]


def test_lexical_evidence_weighs_by_the_share_of_the_query_the_notes_hold(tmp_path):
    from notesearch import lexical

    db = forty_passages(tmp_path)

    def coverage(text: str) -> float:
        return lexical.coverage(lexical.word_counts(db, Query.parse(text)), 40)

    assert coverage("dropout learning") == 1.0
    # "zebra" is in no passage: rarer than "dropout", so it outweighs the common "learning"
    half = coverage("learning zebra")
    assert 0 < half < 0.5
    assert coverage("zebra") == 0.0

    # pages 1 and 2: dense prefers page 1, BM25 (on the words found) page 2
    where = {1: (1, 1, 1, "text"), 2: (1, 2, 2, "text"), 3: (1, 3, 3, "text")}
    dense = [(1, 0.6), (2, 0.4), (3, 0.1)]
    bm25 = [(2, 9.0), (1, 1.0)]
    def top(coverage: float) -> int:
        return rank_pages(dense, bm25, where, dict(dense), "hybrid", k=1,
                          coverage=coverage)[0].page
    assert top(1.0) == 2 and top(0.2) == 1


def _doc_with_a_slide(db) -> int:
    from notesearch import store
    from notesearch.records import Chunk

    # the columns of the first format: the upgrade test starts from it
    doc = 1
    db.execute("INSERT INTO documents (id, name, path, sha256, course, title, pages, size, "
               "indexed_at) VALUES (1, 'a.pdf', '/a.pdf', 'x', 4, 'a', 2, 1, '')")
    db.executemany("INSERT INTO pages (doc_id, number, text) VALUES (1, ?, ?)",
                   [(1, "pooling layers shrink the representation"), (2, "dropout")])
    store.add_chunks(db, doc, [Chunk("News and Shakespeare samples", 1, 1, kind="figure")],
                     np.zeros((1, 4), dtype=np.float32))
    return doc


def test_page_search_follows_pages_and_their_slides(tmp_path):
    import sqlite3

    from notesearch import lexical, store

    db = sqlite3.connect(tmp_path / "x.db")
    store.migrate(db)
    doc = _doc_with_a_slide(db)
    both = {(doc, 1), (doc, 2)}
    # one query word in the prose, one on the slide: the whole page holds both
    split = lexical.page_scores(db, Query.parse("pooling Shakespeare"), both)
    assert set(split) == {(doc, 1)}
    assert split[(doc, 1)] > lexical.page_scores(db, Query.parse("pooling"), both)[(doc, 1)]
    # only the pages asked about
    assert lexical.page_scores(db, Query.parse("dropout"), {(doc, 1)}) == {}
    db.execute("DELETE FROM chunks WHERE kind = 'figure'")
    assert lexical.page_scores(db, Query.parse("Shakespeare"), both) == {}
    store.delete_document(db, doc)
    assert db.execute("SELECT count(*) FROM pages_fts").fetchone()[0] == 0


def test_an_older_index_gains_page_search_on_upgrade(tmp_path):
    import sqlite3

    from notesearch import lexical, store

    db = sqlite3.connect(tmp_path / "x.db")
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    store.m001_initial(db)
    db.execute("INSERT INTO _migrations VALUES ('m001_initial', '')")
    doc = _doc_with_a_slide(db)
    assert store.migrate(db) == ["m002_page_search", "m003_page_source", "m004_page_lines",
                                 "m005_formats"]
    query = Query.parse("Shakespeare pooling")
    assert set(lexical.page_scores(db, query, {(doc, 1), (doc, 2)})) == {(doc, 1)}
    assert store.migrate(db) == []
