"""One writer, many readers: a second build is refused naming the first one's PID, and searches
made while a build runs answer from the old index or the new one, never with an error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_pdf

import notesearch.index
from notesearch import NoteIndex, layout

QUERIES = ["quagga stripes in residual networks", "momentum and gradient descent"]


@pytest.fixture
def built(tmp_path, onnx_models) -> tuple[Path, Path]:
    """A small index of eight lectures; the exported model is hard-linked in."""
    notes, index = tmp_path / "notes", tmp_path / "index"
    shutil.copytree(onnx_models, index / "models", copy_function=os.link)
    for n in range(8):
        make_pdf(notes / f"lecture-{n}.pdf", [
            f"Lecture {n}, part {p}. Momentum averages gradient descent steps over batch "
            f"{n * 10 + p}; dropout and weight decay regularise layer {p}." * 4
            for p in range(1, 4)])
    NoteIndex.build(notes, index, ocr=False)
    return notes, index


def cli(notes: Path, index: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "notesearch", "index", str(notes), "--index", str(index),
            "--no-ocr", *extra]


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_second_builder_is_refused_with_the_holders_pid(built):
    notes, index = built
    with layout.IndexDir(index).write_lock():
        refused = subprocess.run(cli(notes, index), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert f"is being built by PID {os.getpid()}" in refused.stderr
    assert "Traceback" not in refused.stderr

    after = subprocess.run(cli(notes, index), capture_output=True, text=True, timeout=300)
    assert after.returncode == 0, after.stderr
    assert "unchanged 8" in after.stdout


def test_two_real_builds_at_once_one_is_refused(built):
    notes, index = built
    first = start(cli(notes, index, "--rebuild"))
    try:
        deadline = time.monotonic() + 60
        while (index / ".lock").read_text().strip() != str(first.pid):
            assert first.poll() is None, "the first build ended before taking the lock"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        second = subprocess.run(cli(notes, index), capture_output=True, text=True, timeout=300)
    finally:
        assert first.wait(timeout=300) == 0
    if "is being built by PID" not in second.stderr:
        pytest.skip("the first build finished before the second one started")
    assert second.returncode == 1
    assert f"PID {first.pid}" in second.stderr


def results(index: Path) -> list[list[tuple[str, int, float]]]:
    with NoteIndex.open(index) as notes:
        return [[(h.file, h.page, round(h.score, 3)) for h in notes.search(q, k=5)]
                for q in QUERIES]


def search_while(build: subprocess.Popen, index: Path) -> list:
    """Search from freshly opened indexes, again and again, until the build ends."""
    seen = []
    while build.poll() is None:
        seen.append(results(index))
    assert build.returncode == 0
    return seen


def test_searches_during_builds_answer_from_the_old_or_the_new_index(built, monkeypatch):
    """Two rebuilds (one adds a Markdown note, one removes it again, deleting the oldest
    generation) run while this test keeps opening the index and searching it."""
    notes, index = built
    embedder = notesearch.index.query_embedder(NoteIndex.open(index).model_name,
                                               layout.IndexDir(index))
    # the real ONNX model, loaded once: each fresh open then costs milliseconds, not seconds
    monkeypatch.setattr(notesearch.index, "query_embedder", lambda *_args: embedder)
    old = results(index)
    (notes / "zebra.md").write_text("# Zebra\n\nQuagga stripes in residual networks, explained.\n")

    during = search_while(start(cli(notes, index, "--rebuild")), index)
    new = results(index)
    (notes / "zebra.md").unlink()
    during += search_while(start(cli(notes, index, "--rebuild")), index)

    assert new != old and new[0][0][0] == "zebra.md"
    assert results(index) == old
    assert len(during) >= 10, "too few searches overlapped the builds to show anything"
    # each search answers from one index; an open index follows a build between searches
    strays = [r for r in during if any(got not in (before, after)
                                       for got, before, after in zip(r, old, new, strict=True))]
    assert not strays, f"{len(strays)} of {len(during)} rounds of searches saw neither index"
    print(f"\n{len(during)} searches during two rebuilds: "
          f"{sum(r == old for r in during)} old, {sum(r == new for r in during)} new")
