"""The exceptions a user can see.

Every message says what went wrong and what to do next; the CLI prints it as one line.
"""


class NotesearchError(Exception):
    """Base of every error that is the user's to fix, not a bug."""


class IndexNotFound(NotesearchError):
    """No built index where one was expected."""


class IndexMismatch(NotesearchError):
    """The index was built by another format version or another model, or is damaged."""


class IndexBusy(NotesearchError):
    """Another process holds the write lock of the index."""


class IndexUnwritable(NotesearchError):
    """The index folder cannot be written (disk full, no permission, not a folder); the
    previous index still answers."""


class NotesNotFound(NotesearchError):
    """The notes folder is missing or holds no notes file."""


class NoteUnreadable(NotesearchError):
    """A notes file could not be read (a corrupt, truncated or encrypted PDF; a file that is
    not what its name says)."""


class OcrUnavailable(NotesearchError):
    """OCR's worker processes could not start; the text of the notes is indexed, their figures
    wait for the next build."""


class BadQuery(NotesearchError):
    """A query or a search option the index cannot answer."""


class BadEvalFile(NotesearchError):
    """A labelled-queries file with a line that is not a valid query."""


def one_line(exc: BaseException) -> str:
    """An exception's message as one short line: a skipped file's reason is one line."""
    text = " ".join(str(exc).split())
    return text[:200] + "…" if len(text) > 200 else text
