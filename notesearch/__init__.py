"""notesearch: local, offline semantic search over PDF study notes, cited by course and page.

    from notesearch import NoteIndex

    if __name__ == "__main__":  # OCR's worker processes import the script again
        NoteIndex.build("notes/", "index/")
        for hit in NoteIndex.open("index/").search("why normalise inputs"):
            print(hit.course_title, hit.page, hit.text)

Names load on first use (PEP 562), so `notesearch --help` does not pay for numpy.
"""

from importlib import import_module

_EXPORTS = {
    "NoteIndex": "index", "BuildReport": "build", "FigureHit": "records",
    "Chunk": "records", "Figure": "records", "Hit": "records", "Page": "records",
    "NotesearchError": "errors", "IndexNotFound": "errors", "IndexMismatch": "errors",
    "IndexBusy": "errors", "IndexUnwritable": "errors", "NotesNotFound": "errors",
    "NoteUnreadable": "errors",
    "BadQuery": "errors", "BadEvalFile": "errors", "OcrUnavailable": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy names too, for tab completion (`dir` listed only `import_module`)."""
    return sorted({*globals(), *__all__})
