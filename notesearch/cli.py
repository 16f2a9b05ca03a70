"""The `notesearch` command: a thin shell over `NoteIndex`.

The commands, their options and their help are a Typer application (commands.py). Typer costs a
cold start about 0.15 s of CPU (its import, then Pydantic validators built for every option), a
third of a whole search, so the command a learner runs most, `notesearch search QUERY [options]`,
is parsed here by a small argparse parser instead and runs the same `run_search`. Anything that
parser does not take exactly (--help, a usage error, an option it does not know) goes to Typer,
so help and usage errors read the same either way; tests/test_cli_fast.py holds the two parsers
to the same results. numpy, ONNX Runtime and PyTorch load inside the commands that need them.

Exit codes: 0 done; 1 an error the message explains (bad input, no index, ...); 2 a usage
error (unknown option, value out of range); 3 `index` finished but skipped some files;
130 interrupted (as the shell shows it: notesearch ends by SIGINT, see `exit_interrupted`);
141 whatever read the output stopped reading (`| head`), quietly, as a tool killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from .courses import parse_course
from .errors import NotesearchError

EXIT_ERROR = 1
EXIT_SKIPPED = 3
EXIT_PIPE_CLOSED = 141
MODES = ("hybrid", "dense", "lexical")
# A build commits its text before it reads figures, and caches each figure's text as it is read.
INTERRUPTED = ("Interrupted; the index is unharmed and keeps every step that finished (run "
               "the same command again to finish a build).")


def __getattr__(name: str):
    """`notesearch.cli.app`, the Typer application, imported on first use (PEP 562)."""
    if name == "app":
        from .commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    try:
        search = plain_search(sys.argv[1:])
        if search is None:
            from .commands import app

            app()
            return
        try:
            run_search(**search)
            sys.stdout.flush()  # a closed pipe must fail here, not in Python's flush at exit
        except BrokenPipeError:
            raise
        except (NotesearchError, OSError) as exc:
            print_error(user_message(exc))
            sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        drop_output()
        sys.exit(EXIT_PIPE_CLOSED)
    except (KeyboardInterrupt, Interrupted):
        exit_interrupted()
    except Exception as exc:  # a bug in notesearch: one line here, the traceback on request
        if os.environ.get("NOTESEARCH_DEBUG"):
            raise
        print_error(f"unexpected {type(exc).__name__}: {exc}. This is a bug in notesearch; run "
                    "again with NOTESEARCH_DEBUG=1 to see the traceback, and please report it")
        sys.exit(EXIT_ERROR)


class Interrupted(BaseException):
    """Ctrl-C inside a Typer command, on its way to `main`: Typer would turn a KeyboardInterrupt
    into a silent exit with status 130, and catches nothing derived from BaseException alone."""


def exit_interrupted() -> NoReturn:
    """Say the index is safe, then end as Python ends on an uncaught Ctrl-C: its clean-up at exit
    runs, then the process kills itself with SIGINT. The shell shows 130 either way, but a shell
    script running notesearch stops only when its child died of SIGINT; a plain exit status 130
    let a loop of builds go on to the next one. (Exiting with 130 also could not be relied on:
    Python turned it into SIGINT anyway now and then.)"""
    print_error(INTERRUPTED, prefix="")
    sys.excepthook = lambda *_: None  # the line above is the whole report
    raise KeyboardInterrupt from None


def drop_output() -> None:
    """Send what is left of stdout nowhere: its reader is gone (`notesearch ... | head -1`), and
    Python's flush at exit would otherwise fail again, with a message, after ours."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def print_error(message: str, prefix: str = "Error: ") -> None:
    """One line on stderr, red on a terminal."""
    line = f"{prefix}{message}"
    print(f"\033[31m{line}\033[0m" if sys.stderr.isatty() else line, file=sys.stderr)


def user_message(exc: NotesearchError | OSError) -> str:
    """What to tell the user about an error that is theirs to fix."""
    if isinstance(exc, OSError) and exc.filename:  # a file or folder they named said no
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc)


class _Declined(Exception):
    """The fast parser does not take this command line; Typer will."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise _Declined(message)


def _search_parser() -> argparse.ArgumentParser:
    """`search`'s options as commands.py declares them (the tests compare the two)."""
    parser = _Parser(add_help=False, allow_abbrev=False)
    parser.add_argument("query")
    parser.add_argument("-k", "--top", dest="k", type=int, default=5)
    parser.add_argument("--course", "-c")
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--index", dest="index_dir", type=Path,
                        default=Path(os.environ.get("NOTESEARCH_INDEX") or "index"))
    parser.add_argument("--model")
    parser.add_argument("--json", dest="json_out", action="store_true")
    return parser


def plain_search(argv: list[str]) -> dict | None:
    """The arguments of `run_search` if `argv` is a `search` the fast parser takes exactly,
    with every value valid; None for anything else, which Typer then handles."""
    if argv[:1] != ["search"] or "--help" in argv:
        return None
    if any(arg[:1] == "-" and arg[2:3] == "=" for arg in argv):
        return None  # argparse reads "-k=3" as 3, Typer as the number "=3" (an error)
    try:
        args = vars(_search_parser().parse_args(argv[1:]))
    except _Declined:
        return None
    try:
        args["course"] = None if args["course"] is None else parse_course(args["course"])
    except ValueError:
        return None
    if args["k"] < 1 or args["mode"] not in MODES:
        return None
    return args


def run_search(query: str, k: int, course: int | None, mode: str, index_dir: Path,
               model: str | None, json_out: bool) -> None:
    """`notesearch search`: ranked pages with course, file, page and the answering sentences."""
    from .index import NoteIndex

    with NoteIndex.open(index_dir, model=model, queries="one") as notes:
        hits = notes.search(query, k=k, course=course, mode=mode)
        none = "" if hits or json_out else notes.nothing_found(course)
    if json_out:
        import json
        from dataclasses import asdict

        print(json.dumps([asdict(h) for h in hits], ensure_ascii=False))
        return
    from .render import print_hits

    print_hits(hits, query, none)
