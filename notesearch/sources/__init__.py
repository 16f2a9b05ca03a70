"""Sources: one module a notes format, each turning a file into a neutral `Document`.

The build, the watcher and `status` meet formats only here. A format module has:

    FORMAT = "markdown"                  # stored per document (documents.format)
    NAME = "Markdown"                    # how messages name it
    SUFFIXES = (".md", ".markdown")      # the files it reads, lower-case
    ASSET_SUFFIXES = (".png", ...)       # other files a document may be read from (its images)
    def fingerprint(path, folder) -> str   # hash of everything the document is read from
    def read(path, folder, figures_dir, warn) -> Document

    def section_html(path, folder, number, passage, answer, image_url) -> str
                                         # the web page view of unit `number` (every format
                                         # but PDF, whose pages the web app renders itself)
    def embedded(path, folder) -> set[Path]  # the files of the folder it shows in that view

`folder` is the notes folder (a `NotesFolder`): a format that pulls in other files (Markdown's
images) resolves them inside it and never outside. Adding a format is one module plus its
entry in `READERS`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from ..errors import NotesNotFound
from ..extract import Warn
from . import markdown, pdf
from .folder import NotesFolder

READERS: tuple[ModuleType, ...] = (pdf, markdown)
_BY_SUFFIX = {suffix: reader for reader in READERS for suffix in reader.SUFFIXES}
_ASSETS = frozenset(suffix for reader in READERS for suffix in reader.ASSET_SUFFIXES)
DESCRIPTION = " or ".join(reader.NAME for reader in READERS)  # "PDF or Markdown"


def reader_for(path: Path | str) -> ModuleType | None:
    """The format module that reads this file, by its suffix; None for any other file."""
    return _BY_SUFFIX.get(Path(path).suffix.lower())


def by_format(name: str) -> ModuleType:
    """The module of a stored document's format."""
    return next(reader for reader in READERS if reader.FORMAT == name)


def find_notes(folder: NotesFolder, warn: Warn, skipped: dict[str, str] | None = None,
               may_be_empty: bool = False) -> dict[str, Path]:
    """Every notes file of `folder` (any registered format) by its relative name.

    A notes file that is no regular file (a broken link, a link loop, a pipe) is warned about
    and, when `skipped` is given, recorded there with its reason. A folder without notes is an
    error unless `may_be_empty` (its index holds notes the learner has since removed).
    """
    notes_dir = folder.path
    if not notes_dir.exists():
        raise NotesNotFound(f"notes folder {notes_dir} does not exist; pass the folder that "
                            "holds your notes (PDF or Markdown files)")
    if not notes_dir.is_dir():
        raise NotesNotFound(f"{notes_dir} is not a folder; pass the folder that holds your notes")
    found: dict[str, Path] = {}
    for relative, path in folder.files(warn):
        if reader_for(path) is None:
            continue
        if not path.is_file():
            reason = f"{relative}: broken link, link loop or not a regular file"
            warn(f"skipped {reason}")
            if skipped is not None:
                skipped[relative] = reason
            continue
        found[relative] = path
    if not found and not may_be_empty:
        raise NotesNotFound(f"no {DESCRIPTION} files in {notes_dir}")
    return found


def watched_files(folder: NotesFolder) -> dict[str, Path]:
    """The notes files and every file a note may be read from (its images), by relative
    name: what a change to means the index may be out of date."""
    return {relative: path for relative, path in folder.files()
            if reader_for(path) is not None or path.suffix.lower() in _ASSETS}
