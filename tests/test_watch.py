"""`index --watch`: notes added, changed, half-copied and removed (and the images a Markdown note
embeds) reach the index on their own."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_pdf, seeded_index, text_image

from notesearch import BuildReport, NoteIndex, layout
from notesearch.watch import snapshot, watch_notes

WAIT_SECONDS = 90  # a build on a busy 2-core machine can take a while; success comes sooner


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_SECONDS} s waiting for {what}")
        time.sleep(0.2)


def files_found(index_dir: Path, word: str) -> set[str]:
    with NoteIndex.open(index_dir) as notes:
        return {hit.file for hit in notes.search(word, k=10, mode="lexical")}


class Watch:
    """`watch_notes` running in a thread, with the reports it sent."""

    def __init__(self, notes: Path, index: Path) -> None:
        self.reports: list[BuildReport] = []
        self.warnings: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=watch_notes, args=(notes, index), kwargs=dict(
            model=None, ocr=False, on_report=self.reports.append, stop_event=self.stop,
            warn=self.warnings.append), daemon=True)

    def failed(self) -> set[str]:
        return {name for report in self.reports for name in report.failed}


@pytest.fixture
def watching(tmp_path, onnx_models) -> Iterator[tuple[Path, Path, Watch]]:
    notes = tmp_path / "notes"
    make_pdf(notes / "base.pdf", ["Base notes on learning rate schedules and warm restarts."])
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(notes, index, ocr=False)
    watch = Watch(notes, index)
    watch.thread.start()
    yield notes, index, watch
    watch.stop.set()
    watch.thread.join(timeout=30)
    assert not watch.thread.is_alive(), "watch_notes did not stop when asked"


def write_slowly(source: bytes, target: Path, pause: float) -> None:
    """Copy in two halves with a pause, as a slow download or a copy to a network drive does."""
    half = len(source) // 2
    with target.open("wb") as handle:
        handle.write(source[:half])
        handle.flush()
        time.sleep(pause)
        handle.write(source[half:])


def test_added_then_removed_pdf_is_searchable_then_gone(watching, tmp_path):
    notes, index, watch = watching
    pdf = make_pdf(tmp_path / "staging" / "new.pdf",
                   ["Xylophonic regularisation: a made-up method for watch tests."]).read_bytes()

    write_slowly(pdf, notes / "new.pdf", pause=0.7)  # shorter than the settle time
    wait_for(lambda: "new.pdf" in files_found(index, "xylophonic"), "the added PDF")
    assert "new.pdf" not in watch.failed(), "a file being copied was reported as failed"
    assert any("new.pdf" in r.added for r in watch.reports)

    (notes / "new.pdf").unlink()
    wait_for(lambda: "new.pdf" not in files_found(index, "xylophonic"), "the removed PDF")
    assert any("new.pdf" in r.removed for r in watch.reports)
    assert files_found(index, "warm restarts") == {"base.pdf"}


def test_changed_pdf_is_reindexed(watching):
    notes, index, _watch = watching
    make_pdf(notes / "base.pdf", ["Base notes, rewritten: quaternionic pooling replaces them."])
    wait_for(lambda: "base.pdf" in files_found(index, "quaternionic"), "the changed PDF")
    assert files_found(index, "warm restarts") == set()


def test_pdf_stalled_half_way_is_retried_when_complete(watching, tmp_path):
    """A copy that stalls long enough to be read half-written fails, then is indexed once whole."""
    notes, index, watch = watching
    pdf = make_pdf(tmp_path / "staging" / "stalled.pdf",
                   ["Zymurgic attention heads, a made-up topic for the stalled copy."]).read_bytes()
    target = notes / "stalled.pdf"
    target.write_bytes(pdf[: len(pdf) // 3])
    wait_for(lambda: "stalled.pdf" in watch.failed(), "the half-written PDF to be tried")

    target.write_bytes(pdf)
    wait_for(lambda: "stalled.pdf" in files_found(index, "zymurgic"), "the completed PDF")
    assert any("stalled.pdf" in r.added for r in watch.reports)


def test_cli_watch_indexes_a_new_pdf_and_ends_cleanly_on_ctrl_c(tmp_path, onnx_models):
    """A file it skips is reported once (the first build's report and warning came twice),
    and Ctrl-C ends the watch with 0 as documented (it was 3, for that file)."""
    notes = tmp_path / "notes"
    make_pdf(notes / "base.pdf", ["Base notes on learning rate schedules and warm restarts."])
    (notes / "junk.pdf").write_text("not a PDF at all")
    index = seeded_index(onnx_models, tmp_path / "index")
    command = [sys.executable, "-m", "notesearch", "index", str(notes), "--index", str(index),
               "--no-ocr", "--watch"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: layout.IndexDir(index).current() is not None, "the first build")
        make_pdf(notes / "late.pdf", ["Okapi embeddings arrive after the watch started."])
        wait_for(lambda: "late.pdf" in files_found(index, "okapi"), "the PDF added while watching")
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert "Traceback" not in err
    summaries = [line for line in out.splitlines() if line.startswith("added 1,")]
    assert len(summaries) == 2, out  # the first build, then the watch's build of late.pdf
    assert len(out.splitlines()) == 2 and err.count("skipped junk.pdf") == 1, (out, err)
    assert f"watching {notes} for changes; Ctrl-C stops" in err


def test_watch_outlives_a_build_that_crashes(watching, monkeypatch):
    """An unexpected error in a build (here a full disk, injected once) costs a warning; the
    watch goes on, and the next change indexes everything."""
    notes, index, watch = watching
    real_build, failed = NoteIndex.build, []

    def disk_full_once(notes_dir, *args, **kwargs):
        if (Path(notes_dir) / "first.pdf").exists() and not failed:
            failed.append(True)
            raise OSError(28, "No space left on device")
        return real_build(notes_dir, *args, **kwargs)

    monkeypatch.setattr(NoteIndex, "build", staticmethod(disk_full_once))
    make_pdf(notes / "first.pdf", ["Narwhal normalisation, first try."])
    wait_for(lambda: any(w.startswith("build failed (OSError") for w in watch.warnings),
             "the failing build")
    make_pdf(notes / "second.pdf", ["Narwhal normalisation, second try."])
    wait_for(lambda: files_found(index, "narwhal") == {"first.pdf", "second.pdf"},
             "both PDFs after the failure")
    assert watch.thread.is_alive()


def test_a_markdown_note_and_its_image_are_followed(watching):
    notes, index, watch = watching
    (notes / "vault").mkdir()
    text_image(notes / "vault" / "slide.png", ["First slide"])
    note = notes / "vault" / "ocelot.md"
    note.write_text("# Ocelot\n\nOcelot optimisers, a note for watch tests.\n\n![[slide.png]]\n")
    wait_for(lambda: "vault/ocelot.md" in files_found(index, "ocelot"), "the added note")
    reports = len(watch.reports)
    text_image(notes / "vault" / "slide.png", ["Second slide, redrawn"])  # the note is as it was
    wait_for(lambda: any("vault/ocelot.md" in r.updated for r in watch.reports[reports:]),
             "the note whose image changed")
    note.unlink()
    wait_for(lambda: "vault/ocelot.md" not in files_found(index, "ocelot"), "the removed note")


def test_an_index_inside_the_notes_folder_is_neither_notes_nor_watched(tmp_path, onnx_models):
    """`notesearch index . --watch` keeps the index in the folder it watches: the figures and
    rendered pages it writes must not wake the next build."""
    notes = tmp_path / "notes"
    make_pdf(notes / "a.pdf", ["Anteater notes."], images={0: text_image(tmp_path / "s.png",
                                                                           ["Anteater slide"])})
    index = seeded_index(onnx_models, notes / "index")
    report = NoteIndex.build(notes, index, ocr=False)
    assert report.added == ["a.pdf"]
    assert list((index / "figures").glob("*/*.png"))  # the figure is in the notes folder
    assert set(snapshot(notes, index)) == {"a.pdf"}
    again = NoteIndex.build(notes, index, ocr=False)
    assert again.unchanged == ["a.pdf"] and not again.added
