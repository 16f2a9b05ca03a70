"""The Typer application behind `notesearch`: every command, its options and its help.

`cli.main` runs it, except for a plain `notesearch search QUERY [options]`, which `cli` parses
itself so that a search does not pay for Typer (see cli.py); `search` here runs the very same
`cli.run_search`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from .cli import (
    EXIT_ERROR,
    EXIT_PIPE_CLOSED,
    EXIT_SKIPPED,
    MODES,
    Interrupted,
    drop_output,
    print_error,
    run_search,
    user_message,
)
from .courses import parse_course
from .errors import NotesearchError


class _Commands(TyperGroup):
    """Turns every error into one red line and a non-zero exit status, in one place."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # the output's reader stopped reading: not an error to report
            drop_output()
            raise typer.Exit(EXIT_PIPE_CLOSED) from None
        except (NotesearchError, OSError) as exc:
            print_error(user_message(exc))
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:  # `cli.main` says so and ends the process
            raise Interrupted from None


app = typer.Typer(
    cls=_Commands,
    help="Search your PDF and Markdown study notes offline; every answer is cited by course "
    "and page (or section).",
    epilog="Exit codes: 0 done, 1 error (the message says what to do), 2 usage error, "
    "3 index finished but skipped files, 130 interrupted, 141 output pipe closed.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    # Plain help and usage errors: Rich's panels (rich + markdown-it imports) tripled the CPU
    # of `notesearch --help`, ~0.23 s against ~0.11 s.
    rich_markup_mode=None,
)


Mode = StrEnum("Mode", {m: m for m in MODES})


IndexDir = Annotated[Path, typer.Option(
    "--index", envvar="NOTESEARCH_INDEX", help="Index folder.", show_default=True)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
TopK = Annotated[int, typer.Option("-k", "--top", min=1, help="How many results.")]
def _course(text: str | None) -> int | None:
    try:
        return None if text is None else parse_course(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


Course = Annotated[int | None, typer.Option(
    "--course", "-c", parser=_course, metavar="COURSE",
    help="Only this course: 1-5, a word of its name (sequence, cnn, improving...) or all.")]
ModeOpt = Annotated[Mode, typer.Option("--mode", help="Ranking: hybrid, dense or lexical.")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="sentence-transformers model name or path (default: the index's, or "
    "the packaged all-MiniLM-L6-v2 for a new index).")]
CheckModel = Annotated[str | None, typer.Option(
    "--model", help="Fail unless the index was built with this model (an index is always "
    "searched with the model that built it).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output on stderr.")]


@app.command()
def index(
    notes_dir: Annotated[Path, typer.Argument(
        metavar="NOTES_DIR",
        help="Folder of notes: PDF and Markdown files (searched recursively).")],
    index_dir: IndexDir = Path("index"),
    model: ModelOpt = None,
    no_ocr: Annotated[bool, typer.Option("--no-ocr", help="Do not read text inside figures.")]
    = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start the index afresh.")] = False,
    watch: Annotated[bool, typer.Option(
        "--watch", help="Keep the index up to date as notes change, until Ctrl-C.")] = False,
    quiet: Quiet = False,
    json_out: JsonFlag = False,
) -> None:
    """Index (or bring up to date) the PDF and Markdown notes in NOTES_DIR; only new and changed
    files are read.

    Example: notesearch index ../shared/notes
    """
    from .index import NoteIndex

    warn = before = None
    if watch:
        from .build import warn_on_stderr
        from .watch import OnceWarn, snapshot

        warn = OnceWarn(warn_on_stderr)  # the watch's builds do not repeat the first's warnings
        before = snapshot(notes_dir, index_dir)
    report = NoteIndex.build(notes_dir, index_dir, model=model, ocr=not no_ocr,
                             rebuild=rebuild, progress=not quiet, warn=warn)
    _print_report(report, json_out)
    if watch:  # until Ctrl-C, which ends a watch with 0 whatever was skipped (named on stderr)
        from .watch import watch_notes

        if not quiet:  # it sat silent, as if hung
            typer.echo(f"watching {notes_dir} for changes; Ctrl-C stops", err=True)
        watch_notes(notes_dir, index_dir, model=model, ocr=not no_ocr,
                    on_report=lambda r: _print_report(r, json_out), warn=warn,
                    built=(before, report))
        return
    if report.failed:
        raise typer.Exit(EXIT_SKIPPED)


def _print_report(report, json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(asdict(report)))
    else:
        typer.echo(report.summary())


@app.command()
def search(
    query: Annotated[str, typer.Argument(
        metavar="QUERY", help="What you are looking for, in your own words.")],
    k: TopK = 5,
    course: Course = None,
    mode: ModeOpt = Mode.hybrid,
    index_dir: IndexDir = Path("index"),
    model: CheckModel = None,
    json_out: JsonFlag = False,
) -> None:
    """Search the notes; prints ranked pages with course, file, page and a snippet.

    Example: notesearch search "why initialise weights randomly" -k 3 --course 1
    """
    run_search(query, k=k, course=course, mode=mode.value, index_dir=index_dir, model=model,
               json_out=json_out)


@app.command()
def figures(
    query: Annotated[str, typer.Argument(
        metavar="QUERY", help="Words printed on the slide you want.")],
    k: TopK = 5,
    course: Course = None,
    index_dir: IndexDir = Path("index"),
    json_out: JsonFlag = False,
) -> None:
    """Find figures (slides, plots) by the text inside them; prints their PNG paths.

    Example: notesearch figures "intuition about derivatives"
    """
    from .index import NoteIndex
    from .render import print_figures

    with NoteIndex.open(index_dir) as notes:
        hits = notes.figures(query, k=k, course=course)
        none = "" if hits or json_out else notes.nothing_found(course, figures=True)
    if json_out:
        typer.echo(json.dumps([asdict(h) for h in hits], ensure_ascii=False))
        return
    print_figures(hits, none)


@app.command()
def status(index_dir: IndexDir = Path("index"), json_out: JsonFlag = False) -> None:
    """Show what is indexed: documents, courses, pages, passages, model, size, build time."""
    from .index import NoteIndex

    with NoteIndex.open(index_dir) as notes:
        info = notes.status()
    if json_out:
        typer.echo(json.dumps(info, ensure_ascii=False))
        return
    from .render import print_status

    print_status(info)


@app.command(name="eval")
def evaluate(
    queries: Annotated[Path, typer.Argument(
        metavar="QUERIES", help="Labelled queries, one JSON object a line.")],
    k: Annotated[int, typer.Option("-k", "--top", min=1,
                                   help="Cut-off for the ranked lists.")] = 10,
    mode: ModeOpt = Mode.hybrid,
    index_dir: IndexDir = Path("index"),
    json_out: JsonFlag = False,
) -> None:
    """Measure search on labelled queries: Recall@1/5/10, MRR, nDCG@10, with baselines.

    Each line: {"id": ..., "query": ..., "kind": ..., "relevant": [{"file": ..., "page": N}]}.
    Example: notesearch eval ../shared/eval/dev.jsonl
    """
    from .evaluate import evaluate_file
    from .index import NoteIndex

    with NoteIndex.open(index_dir) as notes:
        result = evaluate_file(notes, queries, k=k, mode=mode.value)
    for name in result["missing_files"]:
        typer.secho(f"warning: {name} is labelled in {queries} but not in the index at "
                    f"{index_dir}; its queries score 0", fg="yellow", err=True)
    if json_out:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    from .render import print_eval

    print_eval(result)


@app.command()
def serve(
    index_dir: IndexDir = Path("index"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535,
                                      help="Port to listen on (0: any free port).")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open", help="Open a browser tab.")] = False,
) -> None:
    """Serve a local web page to search the notes and see each hit on its page.

    Example: notesearch serve --open
    """
    from .web import serve as run

    run(index_dir, host=host, port=port, open_browser=open_browser)
