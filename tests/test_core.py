"""End to end on the real course notes: real PDFs, real model, real FAISS and SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import make_older_format, make_pdf, seeded_index
from typer.testing import CliRunner

from notesearch import NoteIndex, NotesNotFound
from notesearch.cli import app
from notesearch.layout import DB_NAME, IndexDir

runner = CliRunner()
NN = "Neural Networks and Deep Learning.pdf"
HIT_FIELDS = {"rank", "score", "file", "course", "course_title", "page", "page_end", "text",
              "kind", "figures", "confident"}


def cli(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def search_json(index: Path, query: str, *extra: str) -> list[dict]:
    result = cli("search", query, "--index", index, "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def notes_copy(tmp_path, notes_dir) -> Path:
    """A notes folder we may change: links to the five real PDFs."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for pdf in notes_dir.glob("*.pdf"):
        (folder / pdf.name).symlink_to(pdf)
    return folder


def test_known_answer_is_cited_on_its_page(built_index):
    hits = search_json(built_index, "why must the weights start random rather than all zero",
                       "-k", "3")
    assert any(h["file"] == NN and {27, 28, 29, 30} & set(range(h["page"], h["page_end"] + 1))
               for h in hits), hits


def test_json_has_the_public_fields(built_index):
    hits = search_json(built_index, "orthogonalization", "-k", "4")
    assert len(hits) == 4
    assert HIT_FIELDS <= set(hits[0])
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    assert hits[0]["score"] >= hits[-1]["score"]
    assert hits[0]["course"] == 3
    assert hits[0]["course_title"] == "Structuring Machine Learning Projects"


def test_no_page_twice_and_course_filter(built_index):
    hits = search_json(built_index, "gradient descent learning rate", "-k", "10", "--course", "2")
    pages = [(h["file"], p) for h in hits for p in range(h["page"], h["page_end"] + 1)]
    assert len(pages) == len(set(pages))
    assert {h["course"] for h in hits} == {2}


def test_a_note_saved_twice_shows_each_page_once(tmp_path, onnx_models):
    """The same PDF under two names (a download saved twice) gave every page two tied hits."""
    notes = tmp_path / "notes"
    make_pdf(notes / "rnn.pdf", ["Recurrent networks share weights across time steps. " * 4,
                                 "Gradient clipping keeps exploding gradients in check. " * 4])
    (notes / "rnn (1).pdf").write_bytes((notes / "rnn.pdf").read_bytes())
    make_pdf(notes / "cnn.pdf", ["Convolutions share weights across image positions. " * 4])
    NoteIndex.build(notes, seeded_index(onnx_models, tmp_path / "index"), ocr=False)
    with NoteIndex.open(tmp_path / "index") as index:
        hits = index.search("sharing weights across time", k=5)
    pages = [(h.page, h.page_end) for h in hits if h.file.startswith("rnn")]
    assert pages and len(pages) == len(set(pages)), [(h.file, h.page) for h in hits]


@pytest.mark.parametrize("course, number", [("sequence", 5), ("C4", 4), ("improving", 2),
                                            ("all", None)])
def test_a_course_is_named_as_a_learner_would(built_index, course, number):
    hits = search_json(built_index, "gradient descent", "-k", "5", "--course", course)
    courses = {h["course"] for h in hits}
    if number:
        assert courses == {number}
    else:
        assert len(courses) > 1
    result = cli("figures", "gradient descent", "--course", course, "--index", built_index)
    assert result.exit_code == 0


def test_terminal_output_cites_course_file_and_page(built_index):
    result = cli("search", "Bayes error", "--index", built_index, "-k", "2")
    assert result.exit_code == 0
    assert "C3 Structuring Machine Learning Projects — Structuring your Machine Learning " \
           "Project.pdf, p" in result.stdout


def test_status_lists_documents(built_index):
    result = cli("status", "--index", built_index, "--json")
    info = json.loads(result.stdout)
    assert {d["file"] for d in info["documents"]} == {
        "Convolutional Neural Network.pdf", "Course 2 - Improving Deep Learning Networks.pdf",
        "Course 5 - Sequence Models.pdf", NN, "Structuring your Machine Learning Project.pdf"}
    assert sorted(d["course"] for d in info["documents"]) == [1, 2, 3, 4, 5]
    assert info["model"] == "all-MiniLM-L6-v2" and info["dimension"] == 384
    assert info["passages"] > 400 and info["fast_query_path"]
    assert "model all-MiniLM-L6-v2" in cli("status", "--index", built_index).stdout


def test_incremental_add_change_remove(index_copy, notes_copy):
    unchanged = cli("index", notes_copy, "--index", index_copy, "--no-ocr")
    assert unchanged.exit_code == 0
    assert "added 0, updated 0, removed 0, unchanged 5; embedded 0 passages" in unchanged.stdout

    extra = make_pdf(notes_copy / "zebra.pdf", [
        "Zebra stripes confuse biting flies. " * 12, "Quokkas smile for photographs. " * 12])
    # status told of notes changed or gone, not of a new one
    assert json.loads(cli("status", "--index", index_copy, "--json").stdout)[
        "not_indexed"] == ["zebra.pdf"]
    assert "1 note in the notes folder not in the index (zebra.pdf): run `notesearch index" \
        in " ".join(cli("status", "--index", index_copy).stdout.split())
    added = cli("index", notes_copy, "--index", index_copy, "--no-ocr", "--json")
    report = json.loads(added.stdout)
    assert report["added"] == ["zebra.pdf"] and len(report["unchanged"]) == 5
    assert 0 < report["passages_embedded"] <= 4
    hits = search_json(index_copy, "zebra stripes and biting flies", "-k", "1")
    assert hits[0]["file"] == "zebra.pdf" and hits[0]["course"] is None
    assert hits[0]["course_title"] == "zebra"

    make_pdf(extra, ["Zebra stripes confuse biting flies. " * 12, "Pangolins roll up. " * 12])
    behind = json.loads(cli("status", "--index", index_copy, "--json").stdout)["documents"]
    assert [d["file"] for d in behind if d["changed_since"]] == ["zebra.pdf"]
    assert "1 note changed or gone since indexing (zebra.pdf): run `notesearch " \
        "index" in " ".join(cli("status", "--index", index_copy).stdout.split())
    changed = json.loads(cli("index", notes_copy, "--index", index_copy, "--no-ocr",
                             "--json").stdout)
    assert changed["updated"] == ["zebra.pdf"]
    assert changed["passages_embedded"] == 1  # the unchanged page's passage is reused

    extra.unlink()
    removed = cli("index", notes_copy, "--index", index_copy, "--no-ocr")
    assert "removed 1" in removed.stdout
    hits = search_json(index_copy, "zebra stripes and biting flies", "-k", "10")
    assert all(h["file"] != "zebra.pdf" for h in hits)
    status = json.loads(cli("status", "--index", index_copy, "--json").stdout)
    assert "zebra.pdf" not in {d["file"] for d in status["documents"]}
    assert not any(d["changed_since"] for d in status["documents"]) and not status["not_indexed"]


def test_removing_the_last_note_empties_the_index(tmp_path, onnx_models):
    """The folder the index was built from, emptied: every note is dropped (it was an error,
    and the removed notes went on answering). Another empty folder is still an error."""
    notes = tmp_path / "notes"
    only = make_pdf(notes / "zebra.pdf", ["Zebra stripes confuse biting flies. " * 12])
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(notes, index, ocr=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotesNotFound, match="no PDF or Markdown files"):
        NoteIndex.build(tmp_path / "empty", index, ocr=False)

    only.unlink()
    assert NoteIndex.build(notes, index, ocr=False).removed == ["zebra.pdf"]
    with NoteIndex.open(index) as opened:
        assert opened.search("zebra stripes", k=5) == []
        assert opened.status()["documents"] == []
    make_pdf(notes / "quokka.pdf", ["Quokkas smile for photographs. " * 12])
    assert NoteIndex.build(notes, index, ocr=False).added == ["quokka.pdf"]

def test_indexing_another_folder_keeps_the_first_folders_notes(tmp_path, onnx_models):
    """An index mirrors one notes folder. Indexing a second folder into it dropped every note
    of the first with no word; now it refuses and names both ways out. Notes no longer where
    the index found them (the folder was moved) still follow the new folder."""
    first = tmp_path / "first"
    make_pdf(first / "zebra.pdf", ["Zebra stripes confuse biting flies. " * 12])
    make_pdf(tmp_path / "second" / "quokka.pdf", ["Quokkas smile for photographs. " * 12])
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(first, index, ocr=False)

    result = cli("index", tmp_path / "second", "--index", index, "--no-ocr")
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert f"holds 1 note of {first} that {tmp_path / 'second'} does not have (zebra.pdf)" \
        in message and "--rebuild`" in message and f"--index {index}-2`" in message
    (tmp_path / "index-2").mkdir()  # taken: the index of its own is the next free name
    assert f"--index {index}-3`" in cli("index", tmp_path / "second", "--index", index).output
    with NoteIndex.open(index) as notes:
        assert notes.search("zebra stripes", k=1)[0].file == "zebra.pdf"

    report = NoteIndex.build(tmp_path / "second", index, ocr=False, rebuild=True)
    assert report.added == ["quokka.pdf"]
    (tmp_path / "second").rename(tmp_path / "moved")  # gone from where the index found it
    make_pdf(tmp_path / "moved" / "pangolin.pdf", ["Pangolins roll into a ball. " * 12])
    (tmp_path / "moved" / "quokka.pdf").unlink()
    report = NoteIndex.build(tmp_path / "moved", index, ocr=False)
    assert (report.added, report.removed) == (["pangolin.pdf"], ["quokka.pdf"])


def test_status_after_the_notes_folder_moved_asks_where_it_is_now(tmp_path, onnx_models):
    """It said to run the build on the old folder, which fails ("does not exist")."""
    make_pdf(tmp_path / "notes" / "zebra.pdf", ["Zebra stripes confuse biting flies. " * 12])
    index = seeded_index(onnx_models, tmp_path / "index")
    NoteIndex.build(tmp_path / "notes", index, ocr=False)
    (tmp_path / "notes").rename(tmp_path / "moved")
    status = json.loads(cli("status", "--index", index, "--json").stdout)
    assert status["notes_dir_exists"] is False
    text = " ".join(cli("status", "--index", index).stdout.split())
    assert f"The notes folder {tmp_path / 'notes'} is gone (moved or deleted): run " \
        f"`notesearch index NOTES_DIR --index {index}` with the folder" in text
    assert "changed or gone since" not in text
    assert NoteIndex.build(tmp_path / "moved", index, ocr=False).unchanged == ["zebra.pdf"]
    text = " ".join(cli("status", "--index", index).stdout.split())
    assert "is gone" not in text and "NOTES_DIR" not in text


def test_bad_files_are_skipped_and_the_rest_indexed(tmp_path, onnx_models):
    from pypdf import PdfWriter

    notes = tmp_path / "notes"
    make_pdf(notes / "good.pdf", ["Backpropagation computes gradients layer by layer. " * 8])
    (notes / "fake.pdf").write_text("this is not a pdf at all")
    good_bytes = (notes / "good.pdf").read_bytes()
    (notes / "truncated.pdf").write_bytes(good_bytes[: len(good_bytes) // 2])
    writer = PdfWriter(clone_from=notes / "good.pdf")
    writer.encrypt("secret")
    writer.write(notes / "locked.pdf")
    index = seeded_index(onnx_models, tmp_path / "index")
    result = cli("index", notes, "--index", index, "--no-ocr")
    assert result.exit_code == 3  # built, but files were skipped
    for name in ("fake.pdf", "truncated.pdf", "locked.pdf"):
        assert name in result.output
    assert "password" in result.output
    assert "added 1" in result.stdout and "3 skipped" in result.stdout
    assert search_json(index, "backpropagation gradients")[0]["file"] == "good.pdf"


@pytest.mark.parametrize("args, code, message", [
    (["search", "   "], 1, "query is empty"),
    (["search", "?!.,;"], 1, "holds no letters or digits"),
    (["search", "dropout", "-k", "0"], 2, "'--top': Input should be greater than or equal to 1"),
    (["figures", "dropout", "-k", "0"], 2, "'--top': Input should be greater than or equal to 1"),
    (["eval", "queries.jsonl", "-k", "-1"], 2,
     "'--top': Input should be greater than or equal to 1"),
    (["search", "dropout", "--course", "9"], 2, "course must be one of 1-5, a word of"),
    (["search", "dropout", "--course", "neural"], 2, "'neural' names courses 1, 2, 4"),
    (["serve", "--port", "99999"], 2, "'--port': Input should be less than or equal to 65535"),
    (["serve", "--host", "999.1.1.1"], 1, "pass --host an address of this machine"),
    (["search", "dropout", "--model", "other-model"], 1, "was built with model"),
    (["index", "/no/such/folder"], 1, "does not exist"),
])
def test_bad_input_is_one_line_and_leaves_the_index(index_copy, args, code, message):
    before = search_json(index_copy, "mini-batch gradient descent", "-k", "3")
    result = cli(*args, "--index", index_copy)
    assert result.exit_code == code
    assert message in " ".join(result.output.replace("│", " ").split())
    assert "Traceback" not in result.output
    assert search_json(index_copy, "mini-batch gradient descent", "-k", "3") == before


def test_empty_notes_folder_and_missing_index(tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("index", tmp_path / "empty", "--index", tmp_path / "index")
    assert result.exit_code == 1 and "no PDF or Markdown files" in result.output
    result = cli("search", "dropout", "--index", tmp_path / "index")
    assert result.exit_code == 1
    assert f"no index at {tmp_path / 'index'}; build one with `notesearch index" in result.output


def test_no_match_filter_exits_zero_and_says_why(tmp_path, onnx_models):
    """A course filter that matches no document is an empty answer, not an error; it said
    only "no results"."""
    notes = tmp_path / "notes"
    make_pdf(notes / "only.pdf", ["Transformers use attention. " * 10])
    NoteIndex.build(notes, seeded_index(onnx_models, tmp_path / "index"), ocr=False)
    result = cli("search", "attention", "--index", tmp_path / "index", "--course", "cnn")
    assert result.exit_code == 0
    assert "no notes of C4 Convolutional Neural Networks in this index; leave out --course" \
        in " ".join(result.stdout.split())


def test_index_of_another_format_or_model_is_refused(index_copy, notes_dir):
    result = cli("index", notes_dir, "--index", index_copy, "--model", "paraphrase-MiniLM-L3-v2")
    assert result.exit_code == 1 and "would mix vector spaces" in result.output
    full_name = "sentence-transformers/all-MiniLM-L6-v2"  # the same model as the index's
    assert cli("index", notes_dir, "--index", index_copy, "--model", full_name).exit_code == 0
    assert cli("search", "dropout", "--index", index_copy, "--model", full_name).exit_code == 0
    live = IndexDir(index_copy).current()
    db = sqlite3.connect(live / DB_NAME)
    db.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '')")
    db.commit()
    db.close()
    result = cli("search", "dropout", "--index", index_copy)
    assert result.exit_code == 1 and "written by a newer notesearch" in result.output
    result = cli("index", notes_dir, "--index", index_copy)
    assert result.exit_code == 1 and "written by a newer notesearch" in result.output


def test_python_api_matches_cli(built_index):
    with NoteIndex.open(built_index) as notes:
        hits = notes.search("LSTM versus GRU", k=3)
    assert [h.file for h in hits] == [h["file"] for h in
                                      search_json(built_index, "LSTM versus GRU", "-k", "3")]


def test_an_open_index_follows_the_builds_made_since(index_copy, notes_copy):
    """A notebook keeps an index open while the learner re-indexes: each search answers from
    the latest build (it answered from the notes as they were), and status still works once
    the generation it opened is deleted (it raised FileNotFoundError)."""
    with NoteIndex.open(index_copy) as reader:
        before = [h.chunk_id for h in reader.search("mini-batch gradient descent", k=3)]
        opened = reader.generation
        extra = make_pdf(notes_copy / "zebra.pdf", ["Zebra stripes confuse biting flies. " * 12])
        NoteIndex.build(notes_copy, index_copy, ocr=False)
        assert reader.search("zebra stripes biting flies", k=1)[0].file == "zebra.pdf"
        extra.unlink()
        NoteIndex.build(notes_copy, index_copy, ocr=False)  # deletes the generation it opened
        assert not opened.exists()
        assert "zebra.pdf" not in {d["file"] for d in reader.status()["documents"]}
        assert [h.chunk_id for h in reader.search("mini-batch gradient descent", k=3)] == before


def test_an_older_index_refuses_queries_until_a_build_upgrades_it(index_copy, notes_dir):
    with NoteIndex.open(index_copy) as notes:
        before = [h.chunk_id for h in notes.search("max pooling", k=5)]
    make_older_format(IndexDir(index_copy).current() / DB_NAME)
    result = cli("search", "max pooling", "--index", index_copy)
    assert result.exit_code == 1 and "older format" in result.output
    report = NoteIndex.build(notes_dir, index_copy, ocr=False)
    assert not (report.added or report.updated or report.removed)
    with NoteIndex.open(index_copy) as notes:
        assert [h.chunk_id for h in notes.search("max pooling", k=5)] == before


@pytest.mark.parametrize("args", [["search", "weights random", "-k", "10"],
                                  ["search", "weights random", "--json"],
                                  ["search", "weights random", "-k", "1", "--json"],
                                  ["status"], ["figures", "derivatives"]])
def test_output_into_a_closed_pipe_ends_quietly(built_index, args):
    """`notesearch ... | head -1`: the reader leaving is no error (it was exit 1, or a
    "Broken pipe" line): exit 141 like a tool killed by SIGPIPE, nothing on stderr."""
    import os
    import subprocess
    import sys

    # buffered, as in a terminal session: small output then fails only at Python's exit flush
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    child = subprocess.Popen([sys.executable, "-m", "notesearch", *args, "--index",
                              str(built_index)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env)
    child.stdout.close()  # the reader is gone before the first line is written
    stderr = child.stderr.read().decode()
    assert (child.wait(timeout=60), stderr) == (141, "")
