"""`NoteIndex`: the public face of notesearch. The CLI and the web app only call this.

    report = NoteIndex.build("notes/", "index/")        # new, changed and removed notes only
    hits = NoteIndex.open("index/").search("dropout", k=5, course=2)

A thin facade: it opens a generation and checks arguments; the build is build.py (reading
through notesearch.sources), searching is search.py, every SQL statement is in store.py, and
the files of an index folder are layout.py's.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from . import hints, layout, rank, store, vectors
from .courses import COURSES, course_label, parse_course
from .embed import Embedder, canonical_model
from .errors import BadQuery, IndexMismatch, IndexNotFound
from .models import Queries, find_export, query_embedder
from .query import Query
from .records import FigureHit, Hit, StoredDocument, StoredPassage
from .search import Searcher
from .wording import counted

if TYPE_CHECKING:  # the builder and the notes readers load only when used, never to search
    from .build import BuildReport
    from .extract import Warn
    from .sources import NotesFolder

DEFAULT_INDEX = Path("index")
RANKERS = (*rank.MODES, "rrf")  # "rrf": reciprocal rank fusion, the baseline `eval` compares with

class NoteIndex:
    """A built index, open for searching."""

    def __init__(self, index_dir: Path, generation: Path) -> None:
        self.dir = layout.IndexDir(index_dir)
        self._load(generation)
        self._embedder: Embedder | None = None
        self._queries: Queries = "serial"

    def _load(self, generation: Path) -> None:
        db = store.connect(generation / layout.DB_NAME, readonly=True)
        try:
            state = store.format_state(db)
            if state != "current":
                notes = store.get_meta(db).get("notes_dir") if state == "older" else None
                raise IndexMismatch(hints.index_problem(
                    self.dir.root, state, notes or _notes_dir_of(self.dir)))
            meta = store.get_meta(db)
            # Loaded now, not on first search: two later builds delete this generation's files.
            loaded = vectors.load(generation / layout.VECTORS_NAME)
        except BaseException:
            db.close()
            raise
        self.generation, self.db, self.meta, self.vectors = generation, db, meta, loaded
        self.model_name = meta["model"]
        self._searcher: Searcher | None = None

    def _follow(self) -> None:
        """Move to the live generation when a build swapped it since this index was opened.

        A notebook or script keeps one index open while the learner re-indexes: it answered
        from the notes as they were, and once two builds had deleted its generation, `status`
        failed on the missing folder. Called where a search or status starts, never between
        a search and the lookups of its hits' ids.
        """
        live = self.dir.current()
        if live is None or live == self.generation:
            return
        old, model = self.db, self.model_name
        try:
            self._load(live)
        except (sqlite3.OperationalError, RuntimeError):  # swapped again as it was read
            return
        old.close()
        if self.model_name != model:  # rebuilt with another model
            self._embedder = None

    # ----------------------------------------------------------------------------- opening

    @classmethod
    def open(cls, index_dir: Path | str = DEFAULT_INDEX, model: str | None = None,
             queries: Queries = "serial", embedder: Embedder | None = None) -> NoteIndex:
        """Open the live generation of an index; `model`, if given, must be the one it used.

        `queries`: "one" search then close (the CLI), "serial" searches (the default), or
        "concurrent" ones (the web app): the query model is set up for it (see
        models.query_embedder).
        `embedder`: a query model already loaded, used when it is this index's model rather
        than loading it again (the web app opens one index per concurrent request)."""
        index_dir = Path(index_dir)
        model = canonical_model(model) if model else model
        if index_dir.exists() and not index_dir.is_dir():
            raise IndexNotFound(f"{index_dir} is a file, not an index folder; give the folder "
                                "an index was built in")
        for _attempt in range(3):  # a build may swap generations between reading and opening
            generation = layout.IndexDir(index_dir).current()
            if generation is None and layout.IndexDir(index_dir).pointer_damaged():
                if _attempt < 2:  # or a build swapped generations as CURRENT was read
                    time.sleep(0.05)
                    continue
                raise IndexMismatch(hints.index_problem(
                    index_dir, "damaged", _notes_dir_of(layout.IndexDir(index_dir))))
            if generation is None:
                raise IndexNotFound(f"no index at {index_dir}; build one with "
                                    f"`{hints.index_command(index_dir, None)}`")
            try:
                index = cls(index_dir, generation)
                break
            except (sqlite3.OperationalError, RuntimeError):  # deleted while being opened
                time.sleep(0.05)
        else:
            raise IndexMismatch(hints.index_problem(index_dir, "damaged",
                                                    _notes_dir_of(layout.IndexDir(index_dir))))
        if model is not None and model != index.model_name:
            index.close()
            raise IndexMismatch(
                f"the index at {index_dir} was built with model {index.model_name!r}, not "
                f"{model!r}; leave out --model (an index is searched with the model that built "
                "it), or build it anew with that model: `"
                + hints.index_command(index_dir, index.meta.get("notes_dir"), "--model", model,
                                      "--rebuild") + "`")
        index._queries = queries
        if embedder is not None and embedder.name == index.model_name:
            index._embedder = embedder
        return index

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> NoteIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = query_embedder(self.model_name, self.dir, self._queries)
        return self._embedder

    # ----------------------------------------------------------------------------- building

    @staticmethod
    def build(notes_dir: Path | str, index_dir: Path | str = DEFAULT_INDEX, *,
              model: str | None = None, ocr: bool = True, rebuild: bool = False,
              progress: bool = False, warn: Warn | None = None) -> BuildReport:
        """Bring the index in step with `notes_dir`: only new and changed notes are read.

        Text passages are committed first, so search works while OCR runs; OCR text of the
        figures then lands in a second commit. Either commit is atomic. `warn` receives each
        warning (default: a line on stderr).
        """
        from .build import Builder, warn_on_stderr

        return Builder(Path(notes_dir), Path(index_dir), canonical_model(model) if model else None,
                       ocr, rebuild, progress, warn or warn_on_stderr).run()

    def update(self, notes_dir: Path | str, **options) -> BuildReport:
        """`build` into this index's folder with its model; reopen to see the result."""
        return NoteIndex.build(notes_dir, self.dir.root, model=self.model_name, **options)

    # ----------------------------------------------------------------------------- searching

    def search(self, query: str, k: int = 5, course: int | str | None = None,
               mode: str = "hybrid") -> list[Hit]:
        """The k best pages for `query`, each cited by its best passage."""
        parsed, number = _check_query(query, k, mode, course)
        self._follow()
        return self.searcher.search(parsed, k, number, mode)

    def figures(self, query: str, k: int = 5, course: int | str | None = None
                ) -> list[FigureHit]:
        """Figures whose printed text best answers `query`, for opening the slide itself."""
        parsed, number = _check_query(query, k, "hybrid", course)
        self._follow()
        return self.searcher.figures(parsed, k, number)

    def answers(self, query: str, passages: list[StoredPassage]) -> list[str]:
        """For each passage, the 1-3 sentences of its page that best answer `query`: each
        hit's `answer`, and what the page view marks."""
        return self.searcher.answers(Query.parse(query), passages)

    def answer_page(self, hit: Hit, query: str) -> int:
        """The page of a hit running over pages that holds most of the query's words: where
        its page view opens (it opened on the first page, the answer on the second)."""
        if hit.page_end == hit.page or hit.section is not None:
            return hit.page
        asked = set(_WORD.findall(query.lower()))
        held = {number: len(asked & set(_WORD.findall(text.lower())))
                for number, text in store.page_texts(self.db, hit.doc_id, hit.page, hit.page_end)}
        return max(held, key=lambda number: (held[number], -number), default=hit.page)

    def courses(self) -> dict[int, str]:
        """The courses the index holds notes of, by number: the web page's course filter."""
        return {number: COURSES[number] for number in store.courses_held(self.db)}

    def nothing_found(self, course: int | str | None = None, figures: bool = False) -> str:
        """Why a search found nothing, when the index can tell, and what to do: the CLI's
        line for an empty result (it said only "no results", or "no figures")."""
        number = _course_number(course)
        if number is not None and not store.documents_of_course(self.db, number):
            return (f"no notes of {course_label(number, '')} in this index; leave out "
                    "--course to search them all")
        pending = store.ocr_pending(self.db) if figures else 0
        if pending:
            return (f"no figures found: the text of {counted(pending, 'image')} (figures and "
                    "scanned pages) is not read yet; "
                    f"`{hints.index_command(self.dir.root, self.notes_dir)}` reads it")
        return "no figures" if figures else "no results"

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = Searcher(self.db, self.vectors, lambda: self.embedder, self.dir.root)
        return self._searcher

    # ----------------------------------------------------------------------------- lookups

    def document(self, doc_id: int) -> StoredDocument | None:
        return store.document(self.db, doc_id)

    def passage(self, chunk_id: int) -> StoredPassage | None:
        """A passage by id, with the pixel size of its figure when it is a figure's text."""
        if not 0 < chunk_id < 2**63:
            return None
        return store.passages(self.db, [chunk_id]).get(chunk_id)

    def page_lines(self, doc_id: int, number: int) -> list[store.Line]:
        """A scanned page's OCR lines with their boxes, for the page view; [] for a typed
        page (its text layer locates passages)."""
        return store.page_lines(self.db, doc_id, number)

    def figure_file(self, sha256: str) -> Path | None:
        """The PNG of an indexed figure, by its hash."""
        path = store.figure_path(self.db, sha256)
        return self.dir.root / path if path else None

    @property
    def notes_dir(self) -> Path | None:
        """The notes folder this index was built from: the only place its files are read."""
        notes = self.meta.get("notes_dir")
        return Path(notes) if notes else None

    def section_html(self, doc: StoredDocument, path: Path, number: int, passage: str,
                     answer: str, image_url: Callable[[Path], str | None]) -> str:
        """Unit `number` of a note that is not a PDF, read from `path` (its file, checked by
        the caller), as HTML for the page view with the passage and its answer marked."""
        from .sources import by_format

        return by_format(doc.format).section_html(
            path, self._folder(), number, passage, answer, image_url)

    def embedded_images(self, doc: StoredDocument, path: Path) -> set[Path]:
        """The images a note that is not a PDF shows in its page view (real paths, all inside
        the notes folder): the only ones the web app serves."""
        from .sources import by_format

        return by_format(doc.format).embedded(path, self._folder())

    def _folder(self) -> NotesFolder:
        from .sources import NotesFolder

        return NotesFolder(self.notes_dir or self.dir.root, skip=self.dir.root)

    def is_live(self) -> bool:
        """Whether this is still the index's live generation (a build has not swapped it)."""
        return self.dir.current() == self.generation

    # ----------------------------------------------------------------------------- status

    def status(self) -> dict:
        """What is indexed: documents with course, pages, passages and figures; model; size;
        and each note whose file changed or went away since it was indexed (by its size: no
        file is read), so the learner knows the index is behind."""
        self._follow()
        counts = store.document_counts(self.db)
        documents = store.documents(self.db)
        docs = [
            {"file": d.name, "format": d.format, "course": d.course,
             "course_label": course_label(d.course, d.title), "pages": d.pages,
             "passages": counts[d.id][0], "figures": counts[d.id][1], "sha256": d.sha256,
             "indexed_at": d.indexed_at, "changed_since": _changed_since(d)}
            for _, d in sorted(documents.items())
        ]
        pending = store.ocr_pending(self.db)  # figures and scanned pages
        size = sum(p.stat().st_size for p in self.generation.iterdir())
        return {
            "index": str(self.dir.root), "notes_dir": self.meta.get("notes_dir"),
            "notes_dir_exists": bool(self.notes_dir and self.notes_dir.is_dir()),
            "not_indexed": self._not_indexed(set(documents)),
            "model": self.model_name, "dimension": int(self.meta["dim"]),
            "format_version": store.FORMAT_VERSION, "built_at": self.meta.get("built_at"),
            "documents": docs, "passages": sum(d["passages"] for d in docs),
            "figures_ocr_pending": pending, "size_bytes": size,
            "fast_query_path": find_export(self.model_name, self.dir) is not None,
            "ocr": self.meta.get("ocr", "on"),
            "build_running": self.dir.builder(),  # PID of a build under way, or None
        }

    def _not_indexed(self, indexed: set[str]) -> list[str]:
        """Notes in the notes folder that the index does not hold (`indexed`: the names it
        does): added (or renamed) since the last build, or skipped by it as unreadable.
        `status` listed only notes changed or gone, so a new note went unmentioned."""
        if not (self.notes_dir and self.notes_dir.is_dir()):
            return []
        from .sources import find_notes

        found = find_notes(self._folder(), lambda _warning: None, may_be_empty=True)
        return sorted(set(found) - indexed)


_WORD = re.compile(r"\w{3,}")  # words of a query worth matching: not 'a', 'is'


def _changed_since(doc: StoredDocument) -> bool:
    try:
        return Path(doc.path).stat().st_size != doc.size
    except OSError:  # gone, or the notes folder moved
        return True


def _check_query(query: str, k: int, mode: str, course: int | str | None
                 ) -> tuple[Query, int | None]:
    """The parsed query and the course number, or BadQuery saying what is wrong. A course may
    be named as on the command line ("sequence", "C4", "all")."""
    parsed = Query.parse(query)
    if not isinstance(k, int) or isinstance(k, bool):
        raise BadQuery(f"k must be a whole number, not {k!r}")
    if k < 1:
        raise BadQuery(f"k must be at least 1, not {k}")
    if mode not in RANKERS:
        raise BadQuery(f"mode must be one of {', '.join(rank.MODES)}, not {mode!r}")
    return parsed, _course_number(course)


def _course_number(course: int | str | None) -> int | None:
    """A course as named on the command line ("sequence", "C4", "all"), or BadQuery."""
    if isinstance(course, str):
        try:
            course = parse_course(course)
        except ValueError as exc:
            raise BadQuery(str(exc)) from None
    if course is not None and course not in COURSES:
        raise BadQuery(f"course must be one of 1-5, not {course!r}")
    return course


def _notes_dir_of(index: layout.IndexDir) -> str | None:
    """The notes folder any readable generation was built from, for a hint that runs as is."""
    databases = (generation / layout.DB_NAME
                 for generation in sorted(index.root.glob("gen-*"), reverse=True))
    with closing(store.read_each(databases, lambda db: store.get_meta(db).get("notes_dir"))) \
            as found:
        return next(found, None)
