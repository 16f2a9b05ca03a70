"""Figures: extracted, OCR'd (real RapidOCR), searchable, cached, and listed with hits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import NOTES, make_pdf, need, seeded_index, text_image
from fpdf import FPDF
from typer.testing import CliRunner

from notesearch import NoteIndex
from notesearch.cli import app

SLIDE = ["Quaternion Rotation Trick", "Velociraptor Embedding Layer"]
QUERY = "quaternion rotation trick velociraptor"
STRUCTURING = "Structuring your Machine Learning Project.pdf"


@pytest.fixture(scope="module")
def slide_notes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("slides")
    image = text_image(folder / "slide.png", SLIDE)
    make_pdf(folder / "notes" / "lecture.pdf",
             ["Plain prose about optimisers and learning rates. " * 6, "See the slide below."],
             images={1: image})
    return folder / "notes"


@pytest.fixture(scope="module")
def ocr_index(slide_notes, tmp_path_factory, onnx_models) -> tuple[Path, object]:
    index = seeded_index(onnx_models, tmp_path_factory.mktemp("ocr") / "index")
    report = NoteIndex.build(slide_notes, index, ocr=True)
    return index, report


def test_figure_is_extracted_recorded_and_saved(ocr_index):
    index, report = ocr_index
    assert report.figures["lecture.pdf"]["kept"] == 1
    assert report.figures_ocr_read == 1
    with NoteIndex.open(index) as notes:
        row = notes.db.execute("SELECT page, path, width, ocr_done FROM figures").fetchone()
    assert row["page"] == 2 and row["width"] > 100 and row["ocr_done"] == 1
    assert (index / row["path"]).is_file()


def test_text_inside_a_figure_is_found_only_with_ocr(ocr_index, slide_notes, tmp_path,
                                                     onnx_models):
    with NoteIndex.open(ocr_index[0]) as notes:
        hit = notes.search(QUERY, k=1)[0]
    assert (hit.file, hit.page, hit.kind) == ("lecture.pdf", 2, "figure")
    assert "Velociraptor" in hit.text and hit.confident
    assert hit.figures and hit.figures[0]["page"] == 2

    NoteIndex.build(slide_notes, seeded_index(onnx_models, tmp_path / "plain"), ocr=False)
    with NoteIndex.open(tmp_path / "plain") as notes:
        hits = notes.search(QUERY, k=3)
    assert all(h.kind == "text" and "Velociraptor" not in h.text for h in hits)
    assert not any(h.confident for h in hits)


def test_cached_rebuild_does_not_ocr_again(ocr_index, slide_notes):
    index, _ = ocr_index
    report = NoteIndex.build(slide_notes, index, rebuild=True)
    assert report.figures_ocr_read == 0 and report.figures_ocr_pending == 0
    with NoteIndex.open(index) as notes:
        assert notes.search(QUERY, k=1)[0].kind == "figure"


def test_figures_command_and_json(ocr_index):
    runner = CliRunner()
    result = runner.invoke(app, ["figures", "velociraptor embedding", "--index",
                                 str(ocr_index[0]), "--json"])
    figures = json.loads(result.stdout)
    assert figures[0]["page"] == 2 and figures[0]["path"].endswith(".png")
    assert Path(figures[0]["path"]).is_file()
    hits = json.loads(runner.invoke(app, ["search", QUERY, "--index", str(ocr_index[0]),
                                          "--json"]).stdout)
    assert hits[0]["kind"] == "figure" and hits[0]["figures"][0]["page"] == 2
    text = runner.invoke(app, ["search", QUERY, "--index", str(ocr_index[0])]).stdout
    assert "figure p. 2:" in text


def test_undecodable_image_is_skipped_with_a_warning(tmp_path, onnx_models):
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject

    image = text_image(tmp_path / "slide.png", SLIDE)
    source = make_pdf(tmp_path / "src.pdf", ["Text that must still be indexed. " * 8],
                      images={0: image})
    writer = PdfWriter(clone_from=PdfReader(source))
    for xobject in writer.pages[0]["/Resources"]["/XObject"].values():
        stream = xobject.get_object()
        stream.set_data(b"\x00garbage")
        stream[NameObject("/Filter")] = NameObject("/DCTDecode")
    (tmp_path / "notes").mkdir()
    writer.write(tmp_path / "notes" / "broken.pdf")
    warnings: list[str] = []
    index = seeded_index(onnx_models, tmp_path / "index")
    report = NoteIndex.build(tmp_path / "notes", index, warn=warnings.append)
    assert not report.failed
    assert any("broken.pdf p. 1" in w and "not decodable" in w for w in warnings), warnings
    with NoteIndex.open(index) as notes:
        assert notes.search("text that must still be indexed", k=1)[0].file == "broken.pdf"


@pytest.mark.parametrize("rebuild", [False, True])
def test_figures_left_without_ocr_are_read_by_the_next_build(slide_notes, tmp_path, rebuild,
                                                             onnx_models):
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(slide_notes, index, ocr=False)
    with NoteIndex.open(index) as notes:
        assert notes.status()["figures_ocr_pending"] == 1
    report = NoteIndex.build(slide_notes, index, rebuild=rebuild)
    assert report.figures_ocr_read == 1
    with NoteIndex.open(index) as notes:
        assert notes.status()["figures_ocr_pending"] == 0
        assert notes.search(QUERY, k=1)[0].kind == "figure"
        assert notes.search("optimisers and learning rates", k=1)[0].page == 1


def test_figures_says_when_the_notes_hold_no_match(ocr_index):
    with NoteIndex.open(ocr_index[0]) as notes:
        assert notes.figures(QUERY, k=1)[0].confident
        weak = notes.figures("xyzzyplugh frobnicate", k=3)
    assert weak and not any(figure.confident for figure in weak)
    text = CliRunner().invoke(app, ["figures", "xyzzyplugh frobnicate", "--index",
                                    str(ocr_index[0])]).stdout
    assert text.startswith("No confident match in your notes; closest figures:\n")
    assert "lecture.pdf, p. 2 (weak)" in text


def test_of_a_pages_slides_the_one_printing_the_query_comes_first(tmp_path, onnx_models):
    first = text_image(tmp_path / "first.png", ["Gradient descent overview", "step by step"])
    second = text_image(tmp_path / "second.png", ["Marmalade regularisation", "penalty term"])
    notes = tmp_path / "notes"
    notes.mkdir()
    pdf = FPDF()  # both slides on page 1, the one printing the query second
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 6, "Two slides on this page.")
    pdf.image(str(first), x=10, y=40, w=180)
    pdf.image(str(second), x=10, y=150, w=180)
    pdf.output(str(notes / "slides.pdf"))
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(notes, index, progress=False)
    with NoteIndex.open(index) as notes_index:
        shown = notes_index.figures("marmalade regularisation penalty", k=2)
    assert [f.page for f in shown] == [1, 1]
    assert "Marmalade" in shown[0].text and "Gradient" in shown[1].text


def test_figures_finds_the_slide_that_prints_the_words_not_the_page_about_them(
        tmp_path, onnx_models):
    # Page 1's prose is all about the optimiser and its slide prints something else; the slide
    # printing the words sits on page 3, whose prose is about other things.
    folder = tmp_path / "notes"
    make_pdf(folder / "course.pdf", [
        "The Adam optimiser keeps momentum and scales each step. Adam optimiser bias "
        "correction matters early in training. " * 4,
        "Convolutions share weights across the image. " * 8,
        "Sequence models read one word at a time. " * 8],
        images={0: text_image(tmp_path / "a.png", ["Loss curve by epoch"]),
                2: text_image(tmp_path / "b.png", ["Adam Optimiser Update Rule"])})
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(folder, index, ocr=True)
    with NoteIndex.open(index) as notes:
        assert notes.search("adam optimiser", k=1)[0].page == 1
        found = notes.figures("adam optimiser", k=2)
    assert [(f.page, f.confident) for f in found] == [(3, True), (1, True)]
    assert "Update Rule" in found[0].text and found[0].score == 1.0 and found[1].score == 0.0
    text = CliRunner().invoke(app, ["figures", "adam optimiser", "--index", str(index)]).stdout
    assert text.startswith("1. course — course.pdf, p. 3\n")


def test_a_figure_ocr_cannot_read_stays_pending_and_the_next_build_reads_it(slide_notes, tmp_path,
                                                                          onnx_models):
    """A failed image used to be marked read with no text: lost until --rebuild."""
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(slide_notes, index, ocr=False)
    with NoteIndex.open(index) as notes:
        path = index / notes.db.execute("SELECT path FROM figures").fetchone()["path"]
    saved = path.read_bytes()
    path.write_bytes(saved[:200])  # truncated: the image cannot be decoded

    warnings: list[str] = []
    report = NoteIndex.build(slide_notes, index, ocr=True, warn=warnings.append)
    assert (report.figures_ocr_read, report.ocr_failed) == (0, 1)
    assert any("could not OCR figure" in w and "the next build tries again" in w
               for w in warnings)
    assert "1 image could not be OCR'd" in report.summary()
    with NoteIndex.open(index) as notes:
        assert notes.status()["figures_ocr_pending"] == 1

    path.write_bytes(saved)
    report = NoteIndex.build(slide_notes, index, ocr=True)
    assert (report.figures_ocr_read, report.ocr_failed) == (1, 0)
    with NoteIndex.open(index) as notes:
        assert notes.status()["figures_ocr_pending"] == 0
        assert notes.search(QUERY, k=1)[0].kind == "figure"


def test_a_script_without_a_main_guard_is_told_how_to_fix_it(slide_notes, tmp_path, onnx_models):
    """OCR workers are spawned processes, which import the calling script again: without the
    guard each one ran the build anew, failed on the lock, and every figure was lost."""
    import subprocess
    import sys

    index = seeded_index(onnx_models, tmp_path / "index")
    script = tmp_path / "build_notes.py"
    script.write_text("from notesearch import NoteIndex\n"
                      f"NoteIndex.build({str(slide_notes)!r}, {str(index)!r})\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    assert "OcrUnavailable" in done.stderr and 'if __name__ == "__main__":' in done.stderr
    with NoteIndex.open(index) as notes:  # the text is indexed, the figure waits
        assert notes.status()["figures_ocr_pending"] == 1
        assert notes.search("optimisers and learning rates", k=1)[0].file == "lecture.pdf"

    script.write_text("from notesearch import NoteIndex\n\nif __name__ == '__main__':\n"
                      f"    NoteIndex.build({str(slide_notes)!r}, {str(index)!r})\n")
    subprocess.run([sys.executable, str(script)], check=True, timeout=300)
    with NoteIndex.open(index) as notes:
        assert notes.status()["figures_ocr_pending"] == 0


def test_figure_images_deleted_by_hand_are_restored_by_the_next_build(ocr_index, slide_notes,
                                                                    tmp_path):
    """They were lost for good: the note had not changed, so no build saved them again, the
    page view showed none, and a figure waiting for OCR failed at every build."""
    index = tmp_path / "index"
    shutil.copytree(ocr_index[0], index, symlinks=True)
    shutil.rmtree(index / "figures")

    warnings: list[str] = []
    report = NoteIndex.build(slide_notes, index, ocr=True, warn=warnings.append)
    assert report.updated == ["lecture.pdf"] and not report.failed
    assert report.figures_ocr_read == 0  # its OCR text is found by hash, not read again
    assert any("1 figure images of lecture.pdf were missing" in w for w in warnings)
    with NoteIndex.open(index) as notes:
        hit = notes.search(QUERY, k=1)[0]
        assert hit.kind == "figure" and Path(hit.figures[0]["path"]).is_file()

    warnings.clear()
    report = NoteIndex.build(slide_notes, index, ocr=True, warn=warnings.append)
    assert report.unchanged == ["lecture.pdf"] and not warnings


def test_text_only_in_a_real_course_slide_is_found(tmp_path, onnx_models):
    """The course notes hold much of their content in slide screenshots. Pages 38-40 of the
    real Structuring note (copied with their images): the conditions for transfer learning are
    printed only on the p. 39 slide; with OCR that page answers, without it the page does not."""
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(need(NOTES) / STRUCTURING)
    writer = PdfWriter()
    for number in (38, 39, 40):
        writer.add_page(reader.pages[number - 1])
    (tmp_path / "notes").mkdir()
    writer.write(tmp_path / "notes" / "structuring-38-40.pdf")
    question = "transfer learning: task A and task B have the same input x, low level features"

    report = NoteIndex.build(tmp_path / "notes", seeded_index(onnx_models, tmp_path / "ocr"))
    assert report.figures_ocr_read >= 1 and not report.ocr_failed
    with NoteIndex.open(tmp_path / "ocr") as notes:
        hit = notes.search(question, k=1)[0]
        slides = notes.figures(question, k=1)
    assert (hit.page, hit.kind) == (2, "figure") and "same input" in hit.text.lower()
    assert slides[0].page == 2 and "low level features" in slides[0].text.lower()

    NoteIndex.build(tmp_path / "notes", seeded_index(onnx_models, tmp_path / "plain"), ocr=False)
    with NoteIndex.open(tmp_path / "plain") as notes:
        assert all("same input" not in h.text.lower() for h in notes.search(question, k=3))
