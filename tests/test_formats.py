"""Every kind of note in one folder: a typed course PDF, a scanned copy of part of another,
and a small Markdown vault with pasted slide images (written here).

The folder is indexed incrementally on top of an index of the typed note (which stays
unchanged), then each kind answers with its own citation through the API, the CLI and the web
app: a page for a PDF, a heading path and line for a Markdown section. Real model, real OCR,
real SQLite and FAISS.

The typed note is the one course PDF without figures, so the OCR build reads only this
folder's own slide and scanned pages (about 25 s): on top of the session's index of the five
notes it OCR'd their 228 figures too (about 5 minutes), which no test here is about.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import NOTES, need, seeded_index, text_image
from fastapi.testclient import TestClient
from scanned import scanned_copy
from test_core import cli

from notesearch import NoteIndex
from notesearch.web import create_app

TYPED = "Convolutional Neural Network.pdf"  # no figures
STRUCTURING = "Structuring your Machine Learning Project.pdf"
SCANNED = "scans/structuring-scanned.pdf"
REGULARIZATION = "vault/c2 regularization.md"
ATTENTION = "vault/deep dives/attention.md"
SLIDE = ["Marmalade Gradient Clipping", "Tangerine Warmup Schedule"]

REGULARIZATION_NOTE = """\
---
title: "My regularization notes"
tags: [dl]
---
# Regularization

Notes from week one of the course.

## Dropout

The kestrel schedule halves the keep probability of dropout every third epoch, which my
study group found steadier than a fixed keep_prob.

```python
# a comment, not a heading
d3 = np.random.rand(a3.shape[0], a3.shape[1]) < keep_prob
```

## Slides

![[slide.png]]
"""

ATTENTION_NOTE = """\
# Sequence models: attention

Attention lets the decoder look back at every encoder state.

## Beam width

A <b>beam width</b> of ten is what the *porcupine translator* used for long French sentences.
"""


def line_of(text: str, heading: str) -> int:
    return text.splitlines().index(heading) + 1


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The notes folder: a link to the typed PDF, the scanned copy and the vault."""
    notes = need(NOTES)
    folder = tmp_path_factory.mktemp("formats") / "notes"
    folder.mkdir()
    (folder / TYPED).symlink_to(notes / TYPED)
    scanned_copy(notes / STRUCTURING, folder / SCANNED, [3, 7])
    vault = folder / "vault"
    (vault / "attachments").mkdir(parents=True)
    (vault / "deep dives").mkdir()
    (vault / ".obsidian").mkdir()
    (vault / ".obsidian" / "workspace.md").write_text("# not a note\n")
    text_image(vault / "attachments" / "slide.png", SLIDE)
    # images the web app must never serve: outside the folder, linked out, or not embedded
    text_image(folder.parent / "outside.png", ["Private"])
    (vault / "attachments" / "link.png").symlink_to(folder.parent / "outside.png")
    text_image(vault / "attachments" / "unused.png", ["Not embedded"])
    (folder / REGULARIZATION).write_text(REGULARIZATION_NOTE)
    (folder / ATTENTION).write_text(ATTENTION_NOTE)
    return folder


@pytest.fixture(scope="module")
def index(folder, onnx_models, tmp_path_factory) -> dict:
    """An index of the typed note alone, built without OCR from another folder as the
    session's index is, then brought up to date with the folder."""
    root = tmp_path_factory.mktemp("formats-index")
    typed = root / "typed"
    typed.mkdir()
    (typed / TYPED).symlink_to(NOTES / TYPED)
    target = seeded_index(onnx_models, root / "index")
    NoteIndex.build(typed, target, ocr=False)
    report = NoteIndex.build(folder, target, ocr=True)
    return {"dir": target, "report": report}


def test_only_the_new_files_are_read(index):
    report = index["report"]
    assert sorted(report.added) == sorted([REGULARIZATION, ATTENTION, SCANNED])  # PNGs: no notes
    assert report.unchanged == [TYPED] and not report.failed
    # only the slide: not the unused image nor the one linked out (the typed note has none)
    assert report.scans_ocr_read == 2 and report.figures_ocr_read == 1


def test_status_names_each_format(index):
    with NoteIndex.open(index["dir"]) as notes:
        documents = {d["file"]: d for d in notes.status()["documents"]}
    assert documents[REGULARIZATION]["format"] == "markdown"
    assert documents[REGULARIZATION]["course"] == 2  # from its name, "c2 …"
    assert documents[ATTENTION]["course"] == 5  # from its title, "Sequence models: …"
    assert documents[SCANNED]["format"] == "pdf" and documents[SCANNED]["course"] == 3
    assert documents[REGULARIZATION]["figures"] == 1
    assert ".obsidian/workspace.md" not in " ".join(documents)


def test_each_kind_answers_with_its_citation(index):
    with NoteIndex.open(index["dir"]) as notes:
        prose = notes.search("what does the kestrel schedule do to the keep probability", k=3)[0]
        slide = notes.search("marmalade gradient clipping", k=3)[0]
        nested = notes.search("porcupine translator beam width", k=3)[0]
        scan = notes.search("wake word detection: how many false positives every 24 hours "
                            "are acceptable", k=5)[0]
        typed = notes.search("how does non-max suppression clean up multiple detections of one "
                             "object", k=3)[0]
    assert (prose.file, prose.format, prose.section) == (
        REGULARIZATION, "markdown", "Regularization > Dropout")
    assert prose.line == line_of(REGULARIZATION_NOTE, "## Dropout")
    assert "kestrel" in prose.answer
    assert (slide.file, slide.kind, slide.section) == (
        REGULARIZATION, "figure", "Regularization > Slides")
    assert slide.figures and slide.figures[0]["path"].endswith(".png")
    assert (nested.file, nested.section) == (ATTENTION, "Sequence models: attention > Beam width")
    assert "<b>" not in nested.text  # raw HTML is no text
    # typed p. 7 is the copy's p. 2; with no typed copy of it here, the scan must come first,
    # with the words OCR read (the copy has no text layer)
    assert (scan.file, scan.page) == (SCANNED, 2) and "false positives" in scan.text
    assert (typed.file, typed.format, typed.section, typed.line) == (TYPED, "pdf", None, None)


def test_the_cli_cites_a_section_and_its_line(index):
    line = line_of(REGULARIZATION_NOTE, "## Dropout")
    result = cli("search", "kestrel schedule for dropout", "--index", index["dir"], "-k", "1")
    assert result.exit_code == 0
    assert f"C2 Improving Deep Neural Networks — {REGULARIZATION}, § Regularization > " \
           f"Dropout (line {line})" in result.stdout
    hit = json.loads(cli("search", "kestrel schedule for dropout", "--index", index["dir"],
                         "-k", "1", "--json").stdout)[0]
    assert (hit["section"], hit["line"], hit["format"]) == ("Regularization > Dropout", line,
                                                            "markdown")
    figures = cli("figures", "marmalade gradient clipping", "--index", index["dir"], "-k", "1")
    slides = line_of(REGULARIZATION_NOTE, "## Slides")
    assert f"{REGULARIZATION}, § Regularization > Slides (line {slides})" in figures.stdout


def test_the_web_page_shows_the_section_with_the_passage_marked(index):
    client = TestClient(create_app(index["dir"]))
    hits = client.get("/api/search", params={"q": "kestrel schedule keep probability"}).json()
    hit = hits[0]
    assert hit["section"] == "Regularization > Dropout"
    results = client.get("/", params={"q": "kestrel schedule keep probability"}).text
    assert "§ Regularization &gt; Dropout" in results
    page = client.get(f"/page/{hit['doc_id']}/{hit['page']}",
                      params={"q": "kestrel schedule keep probability", "chunk": hit["chunk_id"]})
    assert page.status_code == 200
    assert 'id="hit"' in page.text and "hit answer" in page.text
    assert "kestrel schedule" in page.text and "a comment, not a heading" in page.text

    slide = client.get("/api/search", params={"q": "marmalade gradient clipping"}).json()[0]
    view = client.get(f"/page/{slide['doc_id']}/{slide['page']}").text
    source = view.split('<img src="', 1)[1].split('"', 1)[0]
    assert source.startswith(f"/note-image/{slide['doc_id']}/")
    image = client.get(source)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    for refused in ("..%2Foutside.png", "vault%2F..%2F..%2Foutside.png",
                    "vault/attachments/link.png", "vault/attachments/unused.png",
                    "vault/c2%20regularization.md", "a%00.png", "..%2F..%2F..%2Fetc%2Fpasswd"):
        assert client.get(f"/note-image/{slide['doc_id']}/{refused}").status_code == 404, refused
    assert client.get(f"/render/{slide['doc_id']}/1.png").status_code == 404  # no PDF to draw


def test_an_edited_note_or_image_is_read_again_alone(folder, index, tmp_path):
    copy = tmp_path / "index"
    shutil.copytree(index["dir"], copy, symlinks=True)
    notes = tmp_path / "notes"
    shutil.copytree(folder, notes, symlinks=True)
    note = notes / REGULARIZATION
    note.write_text(REGULARIZATION_NOTE.replace("kestrel", "albatross"))
    report = NoteIndex.build(notes, copy, ocr=True)
    assert report.updated == [REGULARIZATION]
    assert sorted(report.unchanged) == sorted([TYPED, SCANNED, ATTENTION])
    with NoteIndex.open(copy) as opened:
        assert "albatross" in opened.search("albatross schedule keep probability", k=1)[0].text

    text_image(notes / "vault" / "attachments" / "slide.png", ["Pomegranate Quokka Lantern"])
    report = NoteIndex.build(notes, copy, ocr=True)
    assert report.updated == [REGULARIZATION] and report.figures_ocr_read == 1
    with NoteIndex.open(copy) as opened:
        hit = opened.search("pomegranate quokka lantern", k=1)[0]
    assert (hit.file, hit.kind) == (REGULARIZATION, "figure")

    # A note that turned unreadable since its build: the page says what to run.
    client = TestClient(create_app(copy))
    hit = client.get("/api/search", params={"q": "albatross schedule"}).json()[0]
    note.write_bytes(b"\x00 no longer text")
    page = client.get(f"/page/{hit['doc_id']}/{hit['page']}", params={"q": "albatross"})
    assert page.status_code == 404 and "notesearch index" in page.text

    note.unlink()
    report = NoteIndex.build(notes, copy, ocr=True)
    assert report.removed == [REGULARIZATION]
