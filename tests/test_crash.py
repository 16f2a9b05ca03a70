"""Crash safety: a build killed with SIGKILL at any point leaves the previous index answering with
its previous results, and the next build completes normally (no stale lock, no temp folder).
Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops a build within
moments, says so in one line, and keeps what was finished.

Run with `-s` to see where each kill landed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import make_pdf, seeded_index, text_image

from notesearch import NoteIndex, layout
from notesearch.cli import INTERRUPTED

KILLS = 8
SEED = 6
QUERIES = ["how does momentum smooth gradient descent", "dropout as regularisation",
           "attention weights in a transformer encoder"]
TOPICS = ["momentum smooths noisy gradient descent steps", "dropout regularises wide layers",
          "attention weights mix encoder states", "batch normalisation steadies activations",
          "convolution kernels share weights across positions", "beam search keeps k hypotheses"]


def make_notes(folder: Path, pdfs: int = 12, pages: int = 4) -> Path:
    """Notes with enough distinct text that a rebuild spends real time reading and embedding:
    PDFs, and every third one a Markdown note with a section a page."""
    rng = random.Random(SEED)
    for n in range(pdfs):
        texts = [" ".join(f"Lecture {n} page {p}: {rng.choice(TOPICS)}, case "
                          f"{rng.randint(1, 999)}." for _ in range(8))
                 for p in range(1, pages + 1)]
        if n % 3 == 2:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"lecture-{n:02d}.md").write_text(f"# Lecture {n}\n\n" + "".join(
                f"## Part {p}\n\n{text}\n\n" for p, text in enumerate(texts, start=1)))
        else:
            make_pdf(folder / f"lecture-{n:02d}.pdf", texts)
    return folder


def results(index: Path) -> list[list[tuple[str, int, int, float]]]:
    """What the live index answers: file, pages and score of each hit, for each query."""
    with NoteIndex.open(index) as notes:
        return [[(h.file, h.page, h.page_end, round(h.score, 3)) for h in notes.search(q, k=5)]
                for q in QUERIES]


def build_command(notes: Path, index: Path) -> list[str]:
    return [sys.executable, "-m", "notesearch", "index", str(notes), "--index", str(index),
            "--no-ocr", "--rebuild"]


@dataclass
class Kill:
    delay: float
    phase: str


def phase(index: Path, pid: int, live_before: Path | None) -> str:
    """Where a build stands, from what it has left on disk so far."""
    folder = layout.IndexDir(index)
    if folder.current() != live_before:
        return "after commit"
    if any(g > live_before for g in folder.root.glob("gen-*")):
        return "committing"
    if (index / f".tmp-{pid}").exists():
        return "reading/embedding/writing"
    return "starting"


def kill_build_after(notes: Path, index: Path, delay: float) -> Kill | None:
    """Start a rebuild, SIGKILL it after `delay` s; None if it finished first."""
    live_before = layout.IndexDir(index).current()
    child = subprocess.Popen(build_command(notes, index), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    time.sleep(delay)
    if child.poll() is not None:
        return None
    where = phase(index, child.pid, live_before)
    child.send_signal(signal.SIGKILL)
    child.wait()
    return Kill(delay, where)


@pytest.mark.slow
def test_sigkill_at_random_points_never_harms_the_index(tmp_path, onnx_models):
    notes = make_notes(tmp_path / "notes")
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(notes, index, ocr=False)
    expected = results(index)
    assert all(expected), "every query should find something"

    started = time.monotonic()
    subprocess.run(build_command(notes, index), check=True, capture_output=True, timeout=600)
    duration = time.monotonic() - started
    assert results(index) == expected, "a rebuild of the same PDFs answers the same"

    rng = random.Random(SEED)
    kills = []
    for n in range(KILLS):  # one kill in each slice of the build's duration
        kill = kill_build_after(notes, index, duration * (n + rng.random()) / KILLS)
        if kill is not None:
            kills.append(kill)
            assert results(index) == expected, f"after a kill at {kill.delay:.1f} s ({kill.phase})"

    print(f"\nrebuild takes {duration:.1f} s; {len(kills)} kills survived:")
    for kill in kills:
        print(f"  SIGKILL at {kill.delay:4.1f} s: {kill.phase}")
    assert len(kills) >= KILLS // 2
    assert sum(k.phase == "reading/embedding/writing" for k in kills) >= 2, \
        "too few kills landed mid-build to show anything"

    done = subprocess.run(build_command(notes, index), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert results(index) == expected
    assert not list(index.glob(".tmp-*")) and not list(index.glob("*.part"))
    assert len(list(index.glob("gen-*"))) <= layout.KEEP_PREVIOUS + 2


def test_a_dead_builders_leftovers_are_cleaned_by_the_next_build(tmp_path, onnx_models):
    """What SIGKILL leaves (temp folder, half-written pointer, lock naming a dead PID) is
    cleared by the next build, which then commits normally."""
    notes = make_notes(tmp_path / "notes", pdfs=2, pages=1)
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(notes, index, ocr=False)
    expected = results(index)
    (index / ".tmp-999999").mkdir()
    (index / ".tmp-999999" / layout.DB_NAME).write_bytes(b"half a database")
    (index / "CURRENT.part").write_text("gen-999999\n")
    (index / ".lock").write_text("999999")

    assert results(index) == expected
    make_pdf(notes / "extra.pdf", ["Extra notes on beam search with length penalties."])
    report = NoteIndex.build(notes, index, ocr=False)
    assert report.added == ["extra.pdf"]
    assert not list(index.glob(".tmp-*")) and not (index / "CURRENT.part").exists()
    assert (index / ".lock").read_text() == str(os.getpid())


def ctrl_c(command: list[str], ready, timeout: float = 180) -> tuple[subprocess.CompletedProcess,
                                                                      float]:
    """Run `command` in its own process group; once `ready()` is true, send SIGINT to the whole
    group (what a terminal's Ctrl-C does). Returns the finished process and how many seconds it
    took to exit after the signal; fails if any process of the group outlives it."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    deadline = time.monotonic() + timeout
    while not ready():
        assert child.poll() is None, f"finished before the signal: {child.communicate()}"
        assert time.monotonic() < deadline, "never got ready"
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGINT)
    sent = time.monotonic()
    stdout, stderr = child.communicate(timeout=60)
    took = time.monotonic() - sent
    for _ in range(50):  # no OCR worker left behind (multiprocessing's resource tracker
        try:             # exits on its own just after the build)
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the build outlived it: " + subprocess.run(
            ["ps", "-o", "pid,args", "-g", str(child.pid)], capture_output=True,
            text=True).stdout)
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr), took


def cached_figures(index: Path) -> int:
    import sqlite3

    cache = layout.IndexDir(index).ocr_cache
    if not cache.exists():  # connecting would create it
        return 0
    with sqlite3.connect(f"file:{cache}?mode=ro", uri=True) as db:
        try:
            return db.execute("SELECT count(*) FROM ocr").fetchone()[0]
        except sqlite3.OperationalError:  # the table is not there yet
            return 0


SLIDES = 24  # enough that a build which finished its queue instead of stopping reads them all


def test_ctrl_c_while_figures_are_read_stops_now_and_keeps_what_was_read(tmp_path, onnx_models):
    """Without it, the OCR workers read every figure queued to them (a minute on real notes)
    before the build exited, and Typer exited 130 without a word."""
    slides = [text_image(tmp_path / f"slide-{n}.png", [f"Slide {n}: momentum term {n * 7}",
                                                       f"learning rate decay {n * 3}"])
              for n in range(SLIDES)]
    notes = tmp_path / "notes"
    make_pdf(notes / "slides.pdf", [f"Lecture page {n}." for n in range(SLIDES)],
             images=dict(enumerate(slides)))
    index = seeded_index(onnx_models, tmp_path / "index")
    command = [sys.executable, "-m", "notesearch", "index", str(notes), "--index", str(index)]

    done, took = ctrl_c(command, lambda: cached_figures(index) >= 2)
    assert done.returncode == -signal.SIGINT, done.stderr
    assert done.stderr.strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in done.stderr
    assert not [line for line in done.stderr.splitlines() if line.startswith("notesearch: OCR")
                and "done in" in line], "OCR did not finish: its progress must not say done"
    assert took < 5, f"took {took:.1f} s to stop after Ctrl-C"
    read = cached_figures(index)
    assert 2 <= read < SLIDES - 6, "it stopped early, and every figure read was kept"
    with NoteIndex.open(index) as notes_index:  # the text phase had committed
        assert notes_index.search("Lecture page", k=1)

    report = NoteIndex.build(notes, index, progress=False)
    assert report.figures_ocr_read == SLIDES - read, "the next build reads only the rest"


def test_ctrl_c_while_text_is_read_leaves_the_index_as_it_was(tmp_path, onnx_models):
    notes = make_notes(tmp_path / "notes")
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(notes, index, ocr=False)
    expected = results(index)

    done, _ = ctrl_c(build_command(notes, index), lambda: bool(list(index.glob(".tmp-*"))))
    assert done.returncode == -signal.SIGINT, done.stderr
    assert done.stderr.strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in done.stderr
    assert results(index) == expected
    assert not list(index.glob(".tmp-*"))


def test_ctrl_c_stops_a_shell_script_running_builds(tmp_path, onnx_models):
    """A build ends by SIGINT after its message, so the shell that ran it shows 130 and stops
    too: with a plain exit status 130 a script's loop went on to the next build."""
    notes = make_notes(tmp_path / "notes")
    index = seeded_index(onnx_models, tmp_path / "index")
    script = 'for pass in 1 2; do "$@"; echo "went on after $?"; done'

    done, _ = ctrl_c(["bash", "-c", script, "bash", *build_command(notes, index)],
                     lambda: bool(list(index.glob(".tmp-*"))))
    assert done.returncode == -signal.SIGINT, done.stdout + done.stderr
    assert "went on" not in done.stdout
    assert done.stderr.strip().splitlines()[-1] == INTERRUPTED
