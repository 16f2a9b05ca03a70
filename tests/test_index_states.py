"""Every state an index folder can be found in: one clear line, whose command, typed as printed,
works the first time; and `--rebuild` recovers from each state. Also the one-line messages of
the build's own failures, progress off a terminal, and the hints of `status` and `eval`.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_older_format, make_pdf, text_image
from typer.testing import CliRunner

from notesearch import BadQuery, IndexUnwritable, NoteIndex, store
from notesearch.cli import app
from notesearch.layout import DB_NAME, VECTORS_NAME, IndexDir

runner = CliRunner()
QUERY = "hyperbolic tangent saturation"


def cli(*args) -> object:
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def notes(tmp_path) -> Path:
    folder = tmp_path / "my notes"
    make_pdf(folder / "activations.pdf",
             ["The hyperbolic tangent saturates for large inputs, so its gradient vanishes. " * 6])
    make_pdf(folder / "optimisers.pdf",
             ["Momentum averages past gradients to damp oscillations across the ravine. " * 6])
    return folder


def built(notes: Path, index: Path, generations: int = 1) -> Path:
    """An index of `notes`; with 2 generations the first stays on disk behind the live one."""
    NoteIndex.build(notes, index, ocr=False)
    if generations == 2:
        make_pdf(notes / "later.pdf", ["A later page about learning-rate decay. " * 5])
        NoteIndex.build(notes, index, ocr=False)
    return index


def live_db(index: Path) -> Path:
    return IndexDir(index).current() / DB_NAME


def hint(output: str) -> list[str]:
    """The command a message tells the user to run, as argv for the CLI (without 'notesearch')."""
    commands = re.findall(r"`(notesearch [^`]+)`", " ".join(output.split()))
    assert commands, output
    return shlex.split(commands[-1])[1:]


def answers(index: Path | None) -> None:
    args = ["search", QUERY, "--json"] + (["--index", index] if index else [])
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["file"] == "activations.pdf"


def refused(index: Path) -> str:
    result = cli("search", QUERY, "--index", index)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    return result.output


# ------------------------------------------------------------------------------ the states


def corrupt_database(index: Path) -> None:
    live_db(index).write_bytes(b"this is not a database" * 100)


def foreign_database(index: Path) -> None:
    path = live_db(index)
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE recipes (name TEXT)")
    db.commit()
    db.close()


def older_format(index: Path) -> None:
    make_older_format(live_db(index))


def newer_format(index: Path) -> None:
    db = sqlite3.connect(live_db(index))
    db.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '')")
    db.commit()
    db.close()


def corrupt_vectors(index: Path) -> None:
    (IndexDir(index).current() / VECTORS_NAME).write_bytes(b"\0" * 1000)


def garbage_pointer(index: Path) -> None:
    (index / "CURRENT").write_text("garbage\n")


def pointer_to_nothing(index: Path) -> None:
    (index / "CURRENT").write_text("gen-000009\n")


def deleted_database(index: Path) -> None:
    live_db(index).unlink()


def deleted_vectors(index: Path) -> None:
    (IndexDir(index).current() / VECTORS_NAME).unlink()


STATES = {
    # state: (how to make it, what the message says, builds before: 2 keeps an older generation)
    "damaged database": (corrupt_database, "is damaged", 1),
    "damaged database, older generation readable": (corrupt_database, "is damaged", 2),
    "foreign database": (foreign_database, "not a notesearch index", 1),
    "older format": (older_format, "older format", 1),
    "newer format": (newer_format, "newer notesearch", 1),
    "damaged vectors": (corrupt_vectors, "is damaged", 1),
    "damaged pointer to the live generation": (garbage_pointer, "is damaged", 2),
    # these three read "no index at" with a NOTES_DIR placeholder
    "pointer to a generation that is not there": (pointer_to_nothing, "is damaged", 1),
    "database deleted": (deleted_database, "is damaged", 1),
    "vectors deleted": (deleted_vectors, "is damaged", 1),
}


@pytest.mark.parametrize("state", STATES)
def test_a_broken_index_says_what_to_run_and_that_command_works(tmp_path, notes, state):
    make, says, builds = STATES[state]
    index = built(notes, tmp_path / "index", builds)
    make(index)
    message = refused(index)
    assert says in message
    argv = hint(message)
    if builds == 1 and state in ("damaged database", "foreign database", "database deleted"):
        # nothing readable is left that names the notes folder: the user supplies it
        argv = [str(notes) if a == "NOTES_DIR" else a for a in argv]
    assert "NOTES_DIR" not in argv, message
    result = cli(*argv)
    assert result.exit_code == 0, result.output
    answers(index)


@pytest.mark.parametrize("state", [*STATES, "half-finished first build", "empty folder"])
def test_rebuild_recovers_from_every_state(tmp_path, notes, state):
    index = tmp_path / "index"
    if state == "half-finished first build":
        (index / ".tmp-999999").mkdir(parents=True)
        (index / ".tmp-999999" / DB_NAME).write_bytes(b"half")
    elif state == "empty folder":
        index.mkdir()
    else:
        make, _says, builds = STATES[state]
        make(built(notes, index, builds))
    result = cli("index", notes, "--index", index, "--rebuild", "--no-ocr")
    assert result.exit_code == 0, result.output
    answers(index)
    result = cli("index", notes, "--index", index, "--no-ocr")  # and the next plain build
    assert result.exit_code == 0, result.output
    assert not list(index.glob(".tmp-*"))


@pytest.mark.parametrize("state", ["missing", "empty folder", "half-finished first build"])
def test_no_index_yet_says_how_to_build_one(tmp_path, notes, state):
    index = tmp_path / "index"
    if state != "missing":
        index.mkdir()
    if state == "half-finished first build":  # killed before its commit wrote CURRENT
        (index / ".tmp-999999").mkdir()
    message = refused(index)
    assert f"no index at {index}" in message
    argv = [str(notes) if a == "NOTES_DIR" else a for a in hint(message)]
    assert cli(*argv).exit_code == 0
    answers(index)


def test_a_folder_of_other_files_is_no_index_to_write_in(tmp_path, notes):
    """`--index` naming the notes folder itself, or any folder of other files: the build wrote
    CURRENT, generations, figures and a lock among them. An empty folder is a new index."""
    before = sorted(p.name for p in notes.iterdir())
    for index in (notes, tmp_path):
        result = cli("index", notes, "--index", index, "--no-ocr", "--rebuild")
        assert result.exit_code == 1 and "Traceback" not in result.output
        message = " ".join(result.output.split())
        assert f"{index} holds other files (" in message and "and no index" in message
    assert sorted(p.name for p in notes.iterdir()) == before
    assert not (tmp_path / "CURRENT").exists() and not (tmp_path / ".lock").exists()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"\0")  # hidden files are no one's notes
    assert cli("index", notes, "--index", tmp_path / "empty", "--no-ocr").exit_code == 0
    answers(tmp_path / "empty")


def test_an_index_path_that_is_a_file_is_refused_and_kept(tmp_path, notes):
    index = tmp_path / "index.txt"
    index.write_text("my shopping list")
    message = refused(index)
    assert f"{index} is a file, not an index folder" in message
    result = cli("index", notes, "--index", index, "--rebuild")
    assert result.exit_code == 1 and "is a file, not an index folder" in result.output
    assert "Traceback" not in result.output
    assert index.read_text() == "my shopping list"  # never overwritten, even by --rebuild


@pytest.mark.parametrize("name", ["idx #1", "what?", "100%", "sp ace", "Übersicht 日本"])
def test_index_paths_with_odd_characters(tmp_path, notes, name, monkeypatch):
    index = tmp_path / name / "index"
    built(notes, index)
    answers(index)
    beside = sorted(p.name for p in (tmp_path / name).iterdir())
    assert beside == ["index"]  # no stray database created from a cut-short URI
    monkeypatch.setenv("NOTESEARCH_INDEX", str(index))
    older_format(index)
    message = refused(index)
    assert "older format" in message and "--index" not in message  # it is the default index
    assert cli(*hint(message)).exit_code == 0
    answers(None)


# ------------------------------------------------------------------------ the build's faults


def test_a_file_that_makes_a_library_raise_costs_that_file_only(tmp_path, notes, monkeypatch):
    import notesearch.sources.pdf as pdf

    real = pdf.open_pdf

    def open_pdf(path):  # the one fault injected: what an unknown pypdf bug would raise
        if path.name == "optimisers.pdf":
            raise NotImplementedError("predictor 77 is not supported")
        return real(path)

    monkeypatch.setattr(pdf, "open_pdf", open_pdf)
    index = tmp_path / "index"
    warnings: list[str] = []
    report = NoteIndex.build(notes, index, ocr=False, warn=warnings.append)
    assert report.added == ["activations.pdf"]
    reason = report.failed["optimisers.pdf"]
    assert reason == ("optimisers.pdf: could not be read (NotImplementedError: predictor 77 is "
                      "not supported)")
    assert warnings == [f"skipped {reason}"]
    log = (index / "build.log").read_text()
    assert "Traceback" in log and "predictor 77" in log and report.log == str(index / "build.log")
    answers(index)
    (notes / "broken.pdf").write_bytes(b"%PDF-1.7\n" + b"\0" * 500)  # a pypdf error, explained
    report = NoteIndex.build(notes, index, ocr=False, warn=warnings.append)
    assert "broken.pdf: not a readable PDF" in report.failed["broken.pdf"]
    assert re.search(r"^--- \S+ broken\.pdf$", (index / "build.log").read_text(), re.M)


def test_a_full_disk_ends_the_build_in_one_line_and_the_old_index_answers(tmp_path, notes,
                                                                           monkeypatch):
    import notesearch.build as build

    index = built(notes, tmp_path / "index")
    before = IndexDir(index).current()
    make_pdf(notes / "new.pdf", ["Adam combines momentum with RMSprop scaling. " * 6])

    def save(vectors, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(build.vectors, "save", save)
    with pytest.raises(IndexUnwritable, match="No space left on device.*previous index still"):
        NoteIndex.build(notes, index, ocr=False)
    assert IndexDir(index).current() == before and not list(index.glob(".tmp-*"))
    answers(index)


def test_a_disk_that_fills_while_figures_are_saved_is_the_index_fault_and_leaves_none(
        tmp_path, notes, monkeypatch):
    """Saving a figure's PNG failed on a full disk: each was warned about as the PDF's image
    "not decodable", and those saved before stayed, referenced by nothing, keeping the disk
    full for every later build, --rebuild included."""
    import notesearch.extract as extract

    index = built(notes, tmp_path / "index")
    slides = [text_image(tmp_path / f"{n}.png", [f"Slide {n} of the new lecture"])
              for n in (1, 2)]
    make_pdf(notes / "new.pdf", ["A lecture with two slides. " * 6, "The second one. " * 6],
             images={0: slides[0], 1: slides[1]})
    real = extract.save_image
    saved: list[int] = []

    def save_image(image, page_number, figures_dir, seen, counts):
        if saved:  # the disk is full after the first
            raise OSError(errno.ENOSPC, "No space left on device")
        saved.append(page_number)
        return real(image, page_number, figures_dir, seen, counts)

    monkeypatch.setattr(extract, "save_image", save_image)
    warnings: list[str] = []
    with pytest.raises(IndexUnwritable, match="No space left on device"):
        NoteIndex.build(notes, index, ocr=False, warn=warnings.append)
    assert saved and not any("not decodable" in w for w in warnings)
    assert not list((index / "figures").glob("*/*.png"))  # the one saved went with the build
    answers(index)


def test_progress_off_a_terminal_is_plain_lines_for_long_phases_only():
    from notesearch.progress import bar

    stream = io.StringIO()
    with bar("OCR", 3, "figures", enabled=True, stream=stream, interval=0) as shown:
        for _ in range(3):
            shown.update()
    lines = stream.getvalue().splitlines()
    assert lines[:3] == [f"notesearch: OCR {n}/3 figures (0 s)" for n in (1, 2, 3)]
    assert lines[3] == "notesearch: OCR 3/3 figures, done in 0 s" and len(lines) == 4
    stream = io.StringIO()
    with bar("OCR", 3, "figures", enabled=True, stream=stream) as shown:
        shown.update(3)
    assert stream.getvalue() == ""  # a phase shorter than the interval says nothing


def test_index_off_a_terminal_writes_no_bar_and_quiet_writes_nothing(tmp_path, notes):
    for flags, expect_quiet in (([], False), (["--quiet"], True)):
        done = subprocess.run(
            [sys.executable, "-m", "notesearch", "index", str(notes), "--index",
             str(tmp_path / "index"), "--no-ocr", "--rebuild", *flags],
            capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "\r" not in done.stderr and "it/s" not in done.stderr
        if expect_quiet:
            assert done.stderr == ""


# ---------------------------------------------------------------------- hints and validation


def test_status_after_no_ocr_names_the_command_that_reads_the_figures(tmp_path, notes):
    slide = text_image(tmp_path / "slide.png", ["Gradient checking", "two-sided difference"])
    make_pdf(notes / "slides.pdf", ["A page with a slide. " * 5], images={0: slide})
    index = tmp_path / "index"
    report = NoteIndex.build(notes, index, ocr=False)
    assert report.figures_ocr_pending == 1  # as status counts it (the build said 0)
    result = cli("status", "--index", index)
    assert "1 image (figures and scanned pages) not OCR'd (built with --no-ocr)" in result.output
    assert cli(*hint(result.output)).exit_code == 0
    with NoteIndex.open(index) as opened:
        assert opened.status()["figures_ocr_pending"] == 0
    assert "OCR'd" not in cli("status", "--index", index).output


def test_figures_after_no_ocr_finding_none_says_their_text_waits(tmp_path):
    """It said only "no figures"."""
    slide = text_image(tmp_path / "slide.png", ["Gradient checking", "two-sided difference"])
    make_pdf(tmp_path / "notes" / "slides.pdf", [""], images={0: slide})
    index = tmp_path / "index"
    NoteIndex.build(tmp_path / "notes", index, ocr=False)
    found = cli("figures", "gradient checking", "--index", index).output
    assert "no figures found: the text of 1 image (figures and scanned pages) is not read yet" \
        in " ".join(found.split())
    assert cli(*hint(found)).exit_code == 0
    assert "1. slides — slides.pdf, p. 1" in cli("figures", "gradient checking", "--index",
                                                 index).output


def test_status_during_a_build_says_so_instead_of_a_command_that_would_be_refused(
        tmp_path, notes):
    slide = text_image(tmp_path / "slide.png", ["Gradient checking", "two-sided difference"])
    make_pdf(notes / "slides.pdf", ["A page with a slide. " * 5], images={0: slide})
    index = tmp_path / "index"
    NoteIndex.build(notes, index, ocr=False)
    with IndexDir(index).write_lock():  # as a running build holds it
        shown = cli("status", "--index", index).output
        assert json.loads(cli("status", "--index", index, "--json").stdout)[
            "build_running"] == str(os.getpid())
    assert f"A build (PID {os.getpid()}) is under way" in shown
    assert "not OCR'd" not in shown and "notesearch index" not in shown
    assert json.loads(cli("status", "--index", index, "--json").stdout)["build_running"] is None
    assert "--no-ocr" in cli("status", "--index", index).output


def test_api_errors_name_parameters(tmp_path, notes):
    with NoteIndex.open(built(notes, tmp_path / "index")) as index:
        for call, message in [
            (lambda: index.search(QUERY, k=0), "k must be at least 1, not 0"),
            (lambda: index.figures(QUERY, k=-1), "k must be at least 1, not -1"),
            (lambda: index.search(QUERY, course=9), "course must be one of 1-5, not 9"),
            (lambda: index.search(QUERY, mode="fuzzy"), "mode must be one of"),
            (lambda: index.search(QUERY, k="3"), "k must be a whole number, not '3'"),
            (lambda: index.search(QUERY, course="zzz"), "course must be one of 1-5, a word"),
            (lambda: index.search("?!.,;"), "the query '?!.,;' holds no letters or digits"),
        ]:
            with pytest.raises(BadQuery) as error:
                call()
            assert str(error.value).startswith(message)
        named = index.search(QUERY, course="C1")  # a course named as on the command line
        assert named == index.search(QUERY, course=1)


def test_eval_warns_for_each_labelled_file_not_in_the_index(tmp_path, notes):
    index = built(notes, tmp_path / "index")
    queries = tmp_path / "q.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in [
        {"id": "a", "query": QUERY, "relevant": [{"file": "activations.pdf", "page": 1}]},
        {"id": "b", "query": "momentum", "relevant": [{"file": "elsewhere.pdf", "page": 3}]},
    ]))
    result = cli("eval", queries, "--index", index, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["missing_files"] == ["elsewhere.pdf"]
    assert "warning: elsewhere.pdf is labelled" in result.stderr
    assert "activations.pdf is labelled" not in result.stderr


def test_no_note_gets_an_id_another_note_had(tmp_path, notes):
    """A page link (/page/<note id>/<page>) kept in an open tab or a bookmark showed another
    note once the note it named was removed (SQLite gave its id again) or the index rebuilt
    (ids began at 1 again)."""
    index = built(notes, tmp_path / "index")

    def ids() -> dict[str, int]:
        with NoteIndex.open(index) as notes_index:
            return {name: doc.id for name, doc in store.documents(notes_index.db).items()}

    first = ids()
    (notes / max(first, key=first.get)).unlink()
    make_pdf(notes / "later.pdf", ["A later page about learning-rate decay. " * 5])
    NoteIndex.build(notes, index, ocr=False)
    second = ids()
    assert second["later.pdf"] > max(first.values())
    NoteIndex.build(notes, index, ocr=False, rebuild=True)
    assert min(ids().values()) > max(second.values())
