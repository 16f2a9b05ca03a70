"""Scanned pages are prose: a page without a text layer under a page-sized image is read by
full-page OCR (real RapidOCR), and its lines are the page's text: passages of kind "text",
dense and lexical evidence, cited by page, with a snippet from the lines that match.

The scanned copy is made here from the real notes (tests/scanned.py): grey, blurred, slightly
rotated pages in an image-only PDF at 110 dpi. Four pages keep the OCR to about a minute on two
busy cores.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import NOTES, make_pdf, need, seeded_index, text_image
from fastapi.testclient import TestClient
from scanned import scanned_copy

from notesearch import NoteIndex, store
from notesearch.extract import is_scanned, iter_pages, open_pdf
from notesearch.web import create_app

STRUCTURING = "Structuring your Machine Learning Project.pdf"
PAGES = [3, 6, 7, 11]  # of the typed notes; pages 1-4 of the scanned copy
SLIDE = ["Quaternion Rotation Trick", "Velociraptor Embedding Layer"]
# (query, page of the scanned copy, words the snippet must hold)
QUESTIONS = [
    ("orthogonalization: a system design property so that changing one component has no side "
     "effects on the others", 1, {"orthogonal", "side effects"}),
    ("wake word detection: how many false positives every 24 hours are acceptable", 3,
     {"false positive", "24 hours"}),
    ("when to change the dev/test sets and the evaluation metric because the target is in the "
     "wrong place", 4, {"metric", "target"}),
]


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> Path:
    source = need(NOTES) / STRUCTURING
    folder = tmp_path_factory.mktemp("scans") / "notes"
    scanned_copy(source, folder / "structuring-scanned.pdf", PAGES)
    slide = text_image(folder.parent / "slide.png", SLIDE)
    make_pdf(folder / "lecture.pdf",
             ["Plain prose about optimisers and learning rates. " * 6, ""], images={1: slide})
    return folder


@pytest.fixture(scope="module")
def built(notes, tmp_path_factory, onnx_models) -> dict:
    """The same index built three ways: without OCR, then OCR'd by a second build (the OCR
    phase), then rebuilt from scratch (scanned pages found in the OCR cache while reading)."""
    index = seeded_index(onnx_models, tmp_path_factory.mktemp("scan-index") / "index")
    plain = NoteIndex.build(notes, index, ocr=False)
    with NoteIndex.open(index) as opened:
        pending = opened.status()["figures_ocr_pending"]  # figures and scanned pages
        plain_pages = pages_of(opened)
    ocr = NoteIndex.build(notes, index, ocr=True)
    with NoteIndex.open(index) as opened:
        ocr_pages, ocr_passages = pages_of(opened), passages_of(opened)
    copy = index.parent / "rebuilt"
    shutil.copytree(index, copy)
    rebuilt = NoteIndex.build(notes, copy, ocr=True, rebuild=True)
    with NoteIndex.open(copy) as opened:
        rebuilt_pages, rebuilt_passages = pages_of(opened), passages_of(opened)
    return {"index": index, "plain": plain, "pending": pending, "plain_pages": plain_pages,
            "ocr": ocr, "ocr_pages": ocr_pages, "ocr_passages": ocr_passages,
            "rebuilt": rebuilt, "rebuilt_pages": rebuilt_pages,
            "rebuilt_passages": rebuilt_passages}


def pages_of(index: NoteIndex) -> list[tuple]:
    return [tuple(r) for r in index.db.execute(
        "SELECT p.number, p.source, p.text FROM pages p JOIN documents d ON d.id = p.doc_id "
        "WHERE d.name = 'structuring-scanned.pdf' ORDER BY p.number")]


def passages_of(index: NoteIndex) -> list[tuple]:
    return [tuple(r) for r in index.db.execute(
        "SELECT c.kind, c.page, c.page_end, c.text FROM chunks c JOIN documents d "
        "ON d.id = c.doc_id WHERE d.name = 'structuring-scanned.pdf' ORDER BY c.id")]


def test_scanned_pages_are_recognised_and_slides_are_not(notes):
    scanned = [is_scanned(page, pdf_page) for page, pdf_page in
               iter_pages(open_pdf(notes / "structuring-scanned.pdf"), notes, print)]
    assert scanned == [True] * len(PAGES)
    typed = [is_scanned(page, pdf_page) for page, pdf_page in
             iter_pages(open_pdf(notes / "lecture.pdf"), notes, print)]
    assert typed == [False, False]  # page 2 holds only a slide, a fifth of the page


def test_without_ocr_scanned_pages_wait_with_no_text(built):
    assert built["pending"] == len(PAGES) + 1  # the scanned pages and the lecture's slide
    assert [(n, source, text) for n, source, text in built["plain_pages"]] == [
        (n, "scan", "") for n in range(1, len(PAGES) + 1)]
    assert built["plain"].figures["structuring-scanned.pdf"]["found"] == 0


def test_ocr_gives_scanned_pages_their_text_as_prose(built):
    assert built["ocr"].scans_ocr_read == len(PAGES) and built["ocr"].figures_ocr_read == 1
    assert all(source == "ocr" for _, source, _ in built["ocr_pages"])
    assert "orthogonality is a system design property" in built["ocr_pages"][0][2]
    assert {kind for kind, *_ in built["ocr_passages"]} == {"text"}
    assert {page for _, page, _, _ in built["ocr_passages"]} >= {1, 2, 3, 4}
    with NoteIndex.open(built["index"]) as opened:
        assert store.ocr_pending(opened.db) == 0
        assert opened.db.execute("SELECT count(*) FROM figures f JOIN documents d ON "
                                 "d.id = f.doc_id WHERE d.name = 'structuring-scanned.pdf'"
                                 ).fetchone()[0] == 0


def test_a_rebuild_reads_scanned_pages_from_the_cache_identically(built):
    assert built["rebuilt"].scans_ocr_read == 0 and built["rebuilt"].figures_ocr_read == 0
    assert built["rebuilt_pages"] == built["ocr_pages"]
    assert built["rebuilt_passages"] == built["ocr_passages"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_questions_about_scanned_pages_cite_the_page(built, mode):
    with NoteIndex.open(built["index"]) as opened:
        for query, page, words in QUESTIONS:
            hit = opened.search(query, k=3, mode=mode)[0]
            assert (hit.file, hit.kind, hit.figures) == ("structuring-scanned.pdf", "text", [])
            assert hit.page <= page <= hit.page_end, (query, hit.page)
            assert any(word in hit.answer.lower() for word in words), hit.answer


def test_the_page_view_marks_the_ocr_lines_of_the_passage_and_answer(built):
    query, page, _ = QUESTIONS[1]
    client = TestClient(create_app(built["index"]))
    hit = client.get("/api/search", params={"q": query}).json()[0]
    html = client.get(f"/page/{hit['doc_id']}/{page}",
                      params={"q": query, "chunk": hit["chunk_id"]}).text
    passage, answer = boxes(html, "hl"), boxes(html, "hl hl-answer")
    assert passage and "could not be located" not in html
    assert all(0 < height < 4 and width > 5 for _, _, width, height in passage)  # lines
    assert answer and set(answer) <= set(passage)
    with NoteIndex.open(built["index"]) as opened:
        lines = opened.page_lines(hit["doc_id"], page)
    marked = [text for text, *box in lines if tuple(box) in set(answer)]
    assert any("24 hours" in text or "false positive" in text for text in marked), marked


def boxes(html: str, kind: str) -> list[tuple[float, ...]]:
    """(left, top, width, height) in % of the page view's highlight boxes of class `kind`."""
    found = re.findall(r'class="([^"]*)"[^>]*style="left:([\d.]+)%;top:([\d.]+)%;'
                       r'width:([\d.]+)%;height:([\d.]+)%"', html)
    return [tuple(float(v) for v in box) for classes, *box in found if classes == kind]


def test_a_slide_in_a_typed_page_stays_a_figure(built):
    with NoteIndex.open(built["index"]) as opened:
        hit = opened.search("quaternion rotation trick velociraptor", k=1)[0]
    assert (hit.file, hit.page, hit.kind) == ("lecture.pdf", 2, "figure")
    assert hit.figures and "Velociraptor" in hit.text


def test_pages_read_before_line_boxes_were_kept_are_read_again(tmp_path):
    db = store.connect(tmp_path / "old.db")
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for migration in store.MIGRATIONS[:3]:
        migration(db)
        db.execute("INSERT INTO _migrations VALUES (?, '')", (migration.__name__,))
    # as a build of that format wrote them
    db.execute("INSERT INTO documents (id, name, path, sha256, course, title, pages, size, "
               "indexed_at) VALUES (1, 'scan.pdf', '/x/scan.pdf', '0', NULL, 'scan', "
               "2, 1, '')")
    db.executemany("INSERT INTO pages (doc_id, number, text, source) VALUES (1, ?, ?, ?)",
                   [(1, "typed", "text"), (2, "read by OCR", "ocr")])
    assert store.migrate(db) == ["m004_page_lines", "m005_formats"]
    assert [tuple(r) for r in db.execute("SELECT number, source FROM pages")] == [
        (1, "text"), (2, "scan")]
    assert store.ocr_pending(db) == 1
