"""`notesearch search` parsed without Typer (cli.plain_search) means what Typer would parse, and
whatever that small parser does not take exactly is left to Typer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer import Exit
from typer._click.exceptions import ClickException
from typer.testing import CliRunner

from notesearch.cli import _search_parser, plain_search
from notesearch.commands import app


def typer_search(argv: list[str]) -> dict | None:
    """What Typer's `search` command would be called with, or None if Typer refuses argv."""
    command = typer.main.get_command(app).commands["search"]
    try:
        params = command.make_context("search", list(argv[1:])).params
    except (ClickException, Exit):
        return None
    return {**params, "mode": params["mode"].value}


TAKEN = [  # what people type: the fast parser must take these, and agree with Typer
    ["search", "dropout"],
    ["search", "why initialise the weights randomly", "-k", "3", "--course", "1"],
    ["search", "beam search", "--top", "10", "-c", "5", "--mode", "lexical", "--json"],
    ["search", "--mode", "dense", "GRU update gate"],
    ["search", "x", "--index", "/tmp/some index", "--model", "all-MiniLM-L6-v2"],
    ["search", "x", "-k3", "-c2", "--top=4", "--course=3", "--mode=hybrid", "--index=i"],
    ["search", "x", "-k", "2", "-k", "7"],
    ["search", "x", "--course", "sequence"], ["search", "x", "-c", "C4"],
    ["search", "x", "-c", "all"],
    ["search", "--", "-k means clustering"],
    ["search", ""],
]
ODD = [  # Typer's to answer (help, usage errors, values out of range), or identical if taken
    ["search"], ["search", "--help"], ["search", "x", "-h"], ["search", "a", "b"],
    ["search", "x", "-k", "0"], ["search", "x", "-k", "-2"], ["search", "x", "-k", "three"],
    ["search", "x", "-k"], ["search", "x", "--course", "6"], ["search", "x", "-c", "0"],
    ["search", "x", "-c", "neural"], ["search", "x", "-c", "pizza"],
    ["search", "x", "--mode", "fuzzy"], ["search", "x", "--mode", "Dense"],
    ["search", "x", "--jso"], ["search", "x", "--to", "3"], ["search", "x", "--json=1"],
    ["search", "x", "-k=3"], ["search", "x", "--unknown"], ["search", "-x"],
    ["search", "x", "--index"], ["search", "x", "-k", "1.5"], ["index", "notes"],
    ["--help"], [], ["searches", "x"],
]


@pytest.mark.parametrize("argv", TAKEN, ids=" ".join)
def test_fast_parser_takes_plain_searches_as_typer_reads_them(argv):
    assert plain_search(argv) is not None
    assert plain_search(argv) == typer_search(argv)


@pytest.mark.parametrize("argv", ODD, ids=lambda a: " ".join(a) or "(none)")
def test_anything_else_goes_to_typer(argv):
    fast = plain_search(argv)
    assert fast is None or fast == typer_search(argv)


def test_index_folder_from_the_environment(monkeypatch):
    for value in ("/tmp/elsewhere", ""):
        monkeypatch.setenv("NOTESEARCH_INDEX", value)
        argv = ["search", "x"]
        assert plain_search(argv) == typer_search(argv)
        assert plain_search([*argv, "--index", "mine"])["index_dir"] == Path("mine")


def test_fast_parser_knows_every_option_of_typer_search():
    command = typer.main.get_command(app).commands["search"]
    typer_options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)
                     if o.startswith("-")} - {"--help"}
    fast_options = {o for a in _search_parser()._actions for o in a.option_strings}
    assert fast_options == typer_options


def test_a_plain_search_answers_as_typer_does_without_importing_it(built_index):
    argv = ["search", "dropout keep_prob", "--index", str(built_index), "--json", "-k", "3"]
    typer_out = CliRunner().invoke(app, argv)
    assert typer_out.exit_code == 0, typer_out.output
    code = ("import sys\nfrom notesearch.cli import main\n"
            f"sys.argv = ['notesearch', *{argv!r}]\nmain()\n"
            "print('typer' in sys.modules, 'pydantic' in sys.modules, file=sys.stderr)\n")
    fast = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert fast.returncode == 0, fast.stderr
    assert json.loads(fast.stdout) == json.loads(typer_out.stdout)
    assert fast.stderr.split() == ["False", "False"]
    missing = subprocess.run([sys.executable, "-m", "notesearch", "search", "x", "--index",
                              str(built_index.parent / "nowhere")], capture_output=True,
                             text=True)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: no index at")
    assert "Traceback" not in missing.stderr


def test_one_query_model_ranks_as_the_prepacked_one(built_index, dev_queries):
    """The CLI's model session skips weight prepacking; vectors and rankings stay the same."""
    from notesearch import NoteIndex
    from notesearch.evaluate import load_queries

    queries = [q["query"] for q in load_queries(dev_queries)]
    with NoteIndex.open(built_index) as server, \
            NoteIndex.open(built_index, queries="one") as once:
        a = server.embedder.encode(queries)
        b = once.embedder.encode(queries)
        assert float((a * b).sum(axis=1).min()) > 0.99999
        for query in queries:
            assert ([(h.file, h.page) for h in server.search(query, k=10)]
                    == [(h.file, h.page) for h in once.search(query, k=10)]), query


@pytest.mark.parametrize("command", ["index", "search", "figures", "eval"])
def test_help_names_each_argument_as_its_text_does(command):
    """The usage line named arguments by their Python names (`{notes_dir}`) while the help
    text says NOTES_DIR."""
    usage = CliRunner().invoke(app, [command, "--help"], prog_name="notesearch").stdout
    usage = usage.splitlines()[0]
    argument = {"index": "NOTES_DIR", "eval": "QUERIES"}.get(command, "QUERY")
    assert usage == f"Usage: notesearch {command} [OPTIONS] {{{argument}}}"
