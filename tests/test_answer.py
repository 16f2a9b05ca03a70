"""The answer sentences of a hit: split from real notes pages, picked with the real model."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from notesearch import NoteIndex
from notesearch.answer import MAX_SENTENCES, MAX_WORDS, Evidence, best_answers, split_sentences
from notesearch.query import Query


@pytest.fixture(scope="module")
def index(built_index):
    with NoteIndex.open(built_index) as opened:
        yield opened


def page_text(index: NoteIndex, file_start: str, number: int) -> str:
    row = index.db.execute(
        "SELECT p.text FROM pages p JOIN documents d ON d.id = p.doc_id "
        "WHERE d.name LIKE ? AND p.number = ?", (f"{file_start}%", number)).fetchone()
    return row[0]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_wrapped_prose_lines_rejoin_into_sentences(index):
    # Course 2 puts a blank line after every wrapped line of prose.
    sentences = split_sentences(page_text(index, "Course 2", 7))
    assert ("The dropout technique is usually used in computer vision, because you almost "
            "always don’t have enough data and is probably always overfitting.") in sentences
    assert "Other regularization methods" in sentences  # a heading stands alone
    # The inverted-dropout code, drawn glyph by glyph, reads as code, not as "k e e p _ p r o b".
    assert any("keep_prob = 0.8 #there is 0.2 chance of removing a hidden unit" in s
               for s in sentences)


def test_code_drawn_glyph_by_glyph_is_found_by_its_words(index):
    hit = index.search("keep_prob", k=1)[0]
    assert (hit.file, hit.page, hit.confident) == (
        "Course 2 - Improving Deep Learning Networks.pdf", 7, True)


def test_a_proper_noun_after_a_line_break_does_not_end_the_sentence(index):
    sentences = split_sentences(page_text(index, "Course 5", 42))
    assert any(s.startswith("The Attention Model is a solution to this problem") for s in sentences)


def test_bullet_notes_split_at_each_item(index):
    sentences = split_sentences(page_text(index, "Convolutional", 1))
    assert any(s.startswith("Valid Convolution: No padding") for s in sentences)
    assert all(len(s.split()) <= MAX_WORDS for s in sentences)


@pytest.mark.parametrize(("query", "expected"), [
    ("loss function vs cost function", ["loss function", "each training example"]),
    ("why does encoder-decoder translation get worse on sentences longer than 30 or 40 words",
     ["longer than 30 or 40 words, the performance usually comes down"]),
    ("1x1 convolution bottleneck layer", ["1 x 1 convolution to shrink volume"]),
    ("build your first system quickly, then iterate",
     ["build your first system quickly, then iterate"]),
])
def test_the_top_hit_answers_with_the_sentence_that_says_it(index, query, expected):
    hit = index.search(query, k=1)[0]
    assert all(e in hit.answer for e in expected), hit.answer


def test_answers_are_one_to_three_sentences_of_the_page_in_order(index, dev_queries):
    queries = [json.loads(line)["query"] for line in dev_queries.read_text().splitlines()]
    for query in queries[:15]:
        for hit in index.search(query, k=5):
            assert hit.answer, (query, hit.page)
            assert len(hit.answer.split()) <= MAX_WORDS
            pages = "\n".join(r[0] for r in index.db.execute(
                "SELECT text FROM pages WHERE doc_id = ? AND number BETWEEN ? AND ? "
                "ORDER BY number", (hit.doc_id, hit.page, hit.page_end)))
            sentences = split_sentences(pages if hit.kind == "text" else hit.text)
            windows = {" ".join(sentences[start:start + size])
                       for size in range(1, MAX_SENTENCES + 1)
                       for start in range(len(sentences) - size + 1)}
            assert hit.answer in windows, (query, hit.answer)


def test_json_adds_new_fields_after_the_old_ones(index):
    hit = index.search("satisficing and optimizing metrics", k=1)[0]
    shape = dataclasses.asdict(hit)
    assert list(shape)[-4:] == ["answer", "format", "section", "line"]
    assert shape["answer"] == hit.answer and shape["format"] == "pdf"
    assert shape["section"] is None and shape["line"] is None


def test_the_page_view_gets_the_hits_answer(index):
    """The page view asks for one passage's answer without the search's query vector."""
    query = "why must my validation data and my final test data be drawn from the same source"
    for hit in index.search(query, k=3):
        assert index.answers(query, [index.passage(hit.chunk_id)]) == [hit.answer]


def test_a_page_of_formulas_or_nothing_has_no_answer():
    debris = "J ( w , b ) = 1 m ∑ L ( ŷ , y )\nd w = 1 m X d Z T\n"
    assert best_answers([Evidence(debris), Evidence("")], Query.parse("cost function")) == ["", ""]


def test_the_passage_nearest_in_meaning_decides_between_equal_word_matches():
    text = ("Momentum smooths the steps of gradient descent by averaging past gradients.\n"
            "Learning rate decay shrinks the steps of gradient descent as training goes on.")
    first, second = text.split("\n")
    for cosines, expected in (((0.9, 0.1), first), ((0.1, 0.9), second)):
        evidence = Evidence(text, (first, second), cosines)
        assert best_answers([evidence], Query.parse("steps of gradient descent")) == [expected]
