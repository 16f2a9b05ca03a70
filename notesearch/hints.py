"""The exact commands that messages tell a user to run, with their real paths.

A hint is only useful if, copied literally, it works the first time: so it names the notes
folder the index was built from, and `--index` whenever the index is not the one found by
default, each quoted for the shell.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

NOTES_PLACEHOLDER = "NOTES_DIR"  # when the notes folder is unknown (no index yet, or unreadable)


def index_command(index_dir: Path, notes_dir: str | Path | None, *flags: str) -> str:
    """`notesearch index NOTES --index DIR [flags]`, as a user would type it."""
    words = ["notesearch", "index",
             shlex.quote(str(notes_dir)) if notes_dir else NOTES_PLACEHOLDER]
    words += _index_option(index_dir)
    words += flags
    return " ".join(words)


def _index_option(index_dir: Path) -> list[str]:
    default = Path(os.environ.get("NOTESEARCH_INDEX") or "index")
    return [] if Path(index_dir) == default else ["--index", shlex.quote(str(index_dir))]


def index_problem(index_dir: Path, state: str, notes_dir: str | Path | None) -> str:
    """What to say about an index database in `store.format_state` `state` (not "current")."""
    if state == "older":
        return (f"the index at {index_dir} uses an older format; run "
                f"`{index_command(index_dir, notes_dir)}` to upgrade it")
    rebuild = index_command(index_dir, notes_dir, "--rebuild")
    if state == "newer":
        return (f"the index at {index_dir} was written by a newer notesearch; upgrade "
                f"notesearch, or rebuild the index for this version with `{rebuild}`")
    what = "not a notesearch index" if state == "foreign" else "damaged (unreadable)"
    return f"the index at {index_dir} is {what}; rebuild it with `{rebuild}`"
