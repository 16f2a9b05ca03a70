"""`NoteIndex`: the public face of notesearch. The CLI and the web app only call this.

    report = NoteIndex.build("notes/", "index/")        # new, changed and removed PDFs only
    hits = NoteIndex.open("index/").search("dropout", k=5, course=2)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import layout, lexical, rank, store, vectors
from .chunk import CHUNKER_VERSION, MAX_WORDS, chunk_pages
from .courses import COURSES, course_label, recognise_course
from .embed import DEFAULT_MODEL, Embedder
from .errors import BadQuery, IndexMismatch, IndexNotFound, NotesNotFound, PdfUnreadable
from .extract import FigureCounts, Warn, extract_figures, iter_pages, open_pdf, pdf_title
from .models import build_embedder, find_export, query_embedder
from .records import Chunk, Hit
from .textnorm import normalise, query_for_embedding

DEFAULT_INDEX = Path("index")
RANKERS = (*rank.MODES, "rrf")  # "rrf": reciprocal rank fusion, the baseline `eval` compares with
CANDIDATES = 100  # passages each ranker proposes before fusion

def warn_on_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@dataclass
class BuildReport:
    """What one `index` run did, for the summary line and `--json`."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    passages_embedded: int = 0
    figures: dict[str, dict[str, int]] = field(default_factory=dict)
    figures_ocr_read: int = 0
    figures_ocr_pending: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        line = (f"added {len(self.added)}, updated {len(self.updated)}, "
                f"removed {len(self.removed)}, unchanged {len(self.unchanged)}; "
                f"embedded {self.passages_embedded} passages")
        if self.figures_ocr_read:
            line += f"; OCR read {self.figures_ocr_read} figures"
        if self.failed:
            line += f"; {len(self.failed)} failed"
        return f"{line} ({self.seconds:.1f} s)"


@dataclass
class FigureHit:
    """A figure whose OCR text matches a query, cited like a passage."""

    rank: int
    score: float
    file: str
    course: int | None
    course_title: str
    page: int
    path: str  # absolute path of the PNG
    text: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def find_pdfs(notes_dir: Path, warn: Warn, skipped: dict[str, str] | None = None
              ) -> dict[str, Path]:
    """Every PDF under `notes_dir` by its relative name; symlinked folders are not followed.

    A `.pdf` that is no regular file (a broken link, a link loop, a pipe) is warned about and,
    when `skipped` is given, recorded there with its reason.
    """
    if not notes_dir.exists():
        raise NotesNotFound(f"notes folder {notes_dir} does not exist")
    if not notes_dir.is_dir():
        raise NotesNotFound(f"{notes_dir} is not a folder; pass the folder that holds your PDFs")
    found: dict[str, Path] = {}
    for folder, subfolders, files in os.walk(notes_dir, onerror=lambda e: warn(str(e))):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if name.lower().endswith(".pdf") and not name.startswith("."):
                relative = path.relative_to(notes_dir).as_posix()
                if not path.is_file():
                    reason = f"{relative}: broken link, link loop or not a regular file"
                    warn(f"skipped {reason}")
                    if skipped is not None:
                        skipped[relative] = reason
                    continue
                found[relative] = path
    if not found:
        raise NotesNotFound(f"no PDF files in {notes_dir}")
    return found


class NoteIndex:
    """A built index, open for searching."""

    def __init__(self, index_dir: Path, generation: Path) -> None:
        self.dir = layout.IndexDir(index_dir)
        self.generation = generation
        self.db = store.connect(generation / layout.DB_NAME, readonly=True)
        store.check_format(self.db, index_dir)
        self.meta = store.get_meta(self.db)
        self.model_name = self.meta["model"]
        # Loaded now, not on first search: two later builds delete this generation's files.
        self.vectors = vectors.load(generation / layout.VECTORS_NAME)
        self._embedder: Embedder | None = None

    # ----------------------------------------------------------------------------- opening

    @classmethod
    def open(cls, index_dir: Path | str = DEFAULT_INDEX, model: str | None = None) -> NoteIndex:
        """Open the live generation of an index; `model`, if given, must be the one it used."""
        index_dir = Path(index_dir)
        for _attempt in range(3):  # a build may swap generations between reading and opening
            generation = layout.IndexDir(index_dir).current()
            if generation is None:
                raise IndexNotFound(
                    f"no index at {index_dir} — run `notesearch index NOTES_DIR` first")
            try:
                index = cls(index_dir, generation)
                break
            except (sqlite3.OperationalError, RuntimeError):  # deleted while being opened
                time.sleep(0.05)
        else:
            raise IndexNotFound(f"the index at {index_dir} could not be opened; run "
                                "`notesearch index NOTES_DIR` to rebuild it")
        if model is not None and model != index.model_name:
            raise IndexMismatch(
                f"the index at {index_dir} was built with model {index.model_name!r}, not "
                f"{model!r}; search without --model, or rebuild with "
                f"`notesearch index NOTES_DIR --model {model} --rebuild`")
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
            self._embedder = query_embedder(self.model_name, self.dir)
        return self._embedder

    # ----------------------------------------------------------------------------- building

    @staticmethod
    def build(notes_dir: Path | str, index_dir: Path | str = DEFAULT_INDEX, *,
              model: str | None = None, ocr: bool = True, rebuild: bool = False,
              progress: bool = False, warn: Warn = warn_on_stderr) -> BuildReport:
        """Bring the index in step with `notes_dir`: only new and changed PDFs are read.

        Text passages are committed first, so search works while OCR runs; OCR text of the
        figures then lands in a second commit. Either commit is atomic.
        """
        return _Builder(Path(notes_dir), Path(index_dir), model, ocr, rebuild, progress,
                        warn).run()

    def update(self, notes_dir: Path | str, **options) -> BuildReport:
        """`build` into this index's folder with its model; reopen to see the result."""
        return NoteIndex.build(notes_dir, self.dir.root, model=self.model_name, **options)

    # ----------------------------------------------------------------------------- searching

    def search(self, query: str, k: int = 5, course: int | None = None,
               mode: str = "hybrid") -> list[Hit]:
        """The k best pages for `query`, each cited by its best passage."""
        query = _check_query(query, k, mode)
        if course is not None and course not in COURSES:
            raise BadQuery(f"--course must be one of 1-5, not {course}")
        allowed = self._allowed_docs(course)
        if allowed is not None and not allowed:
            return []
        dense: rank.Scored = []
        lexical_hits: rank.Scored = []
        query_vector = self.embedder.encode([query_for_embedding(query)])[0]
        if mode != "lexical":
            ids = None if allowed is None else self._chunk_ids(allowed)
            dense = vectors.search(self.vectors, query_vector, CANDIDATES, ids)
        if mode != "dense":
            lexical_hits = lexical.search(self.db, query, CANDIDATES, allowed,
                                          total=self.vectors.ntotal)
        info = self._passages({i for i, _ in dense} | {i for i, _ in lexical_hits})
        page_bm25 = None
        if mode == "hybrid" and self.vectors.ntotal <= lexical.LARGE_INDEX:
            # Above LARGE_INDEX a second full BM25 pass costs more than its evidence is worth.
            page_bm25 = lexical.page_scores(
                self.db, query, {(r["doc_id"], r["page"]) for r in info.values()})
        ranked = rank.rank_pages(
            dense, lexical_hits,
            {i: (r["doc_id"], r["page"], r["page_end"], r["kind"]) for i, r in info.items()},
            self._cosines(query_vector, info), mode=mode, k=k, page_bm25=page_bm25)
        return [self._hit(n, scored, info[scored.chunk_id])
                for n, scored in enumerate(ranked, start=1)]

    def figures(self, query: str, k: int = 5, course: int | None = None) -> list[FigureHit]:
        """Figures whose text best answers `query`, for opening the slide itself."""
        hits = self.search(query, k=max(k * 4, 20), course=course)
        out: list[FigureHit] = []
        seen: set[str] = set()
        for hit in hits:
            rows = self.db.execute(
                "SELECT f.path, f.page, c.text FROM figures f LEFT JOIN chunks c "
                "ON c.figure_id = f.id WHERE f.doc_id = ? AND f.page BETWEEN ? AND ? "
                "ORDER BY c.id IS NULL, f.id", (hit.doc_id, hit.page, hit.page_end)).fetchall()
            for row in rows:
                if row["path"] in seen:
                    continue
                seen.add(row["path"])
                out.append(FigureHit(len(out) + 1, hit.score, hit.file, hit.course,
                                     hit.course_title, row["page"],
                                     str(self.dir.root / row["path"]), row["text"] or ""))
        return out[:k]

    def _cosines(self, query_vector: np.ndarray, info: dict[int, sqlite3.Row]
                 ) -> dict[int, float]:
        """Exact cosine of the query with every candidate, lexical-only ones included:
        confidence is judged on meaning, whichever ranker proposed the passage."""
        ids = list(info)
        if not ids:
            return {}
        stored = np.vstack([self.vectors.reconstruct(i) for i in ids])
        return dict(zip(ids, (stored @ query_vector).tolist(), strict=True))

    def _allowed_docs(self, course: int | None) -> set[int] | None:
        if course is None:
            return None
        return {r[0] for r in self.db.execute("SELECT id FROM documents WHERE course = ?",
                                              (course,))}

    def _chunk_ids(self, doc_ids: set[int]) -> np.ndarray:
        marks = ",".join("?" * len(doc_ids))
        rows = self.db.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", list(doc_ids))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def _passages(self, ids: set[int]) -> dict[int, sqlite3.Row]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT c.id, c.doc_id, c.page, c.page_end, c.kind, c.text, c.heading, d.name, "
            f"d.course, d.title FROM chunks c JOIN documents d ON d.id = c.doc_id "
            f"WHERE c.id IN ({marks})", list(ids))
        return {r["id"]: r for r in rows}

    def _hit(self, number: int, scored: rank.PageScore, row: sqlite3.Row) -> Hit:
        figures = [
            {"path": str(self.dir.root / f["path"]), "page": f["page"], "sha256": f["sha256"]}
            for f in self.db.execute(
                "SELECT path, page, sha256 FROM figures WHERE doc_id = ? AND page BETWEEN ? AND ? "
                "ORDER BY page, id", (row["doc_id"], row["page"], row["page_end"]))
        ]
        return Hit(
            rank=number, score=round(scored.score, 4), file=row["name"], course=row["course"],
            course_title=COURSES.get(row["course"], row["title"]),
            page=row["page"], page_end=row["page_end"], text=row["text"], kind=row["kind"],
            figures=figures, confident=scored.confident, doc_id=row["doc_id"],
            chunk_id=row["id"],
        )

    # ----------------------------------------------------------------------------- lookups

    def document(self, doc_id: int) -> sqlite3.Row | None:
        """A document's row (name, path, sha256, course, title, pages, size) by id."""
        if not 0 < doc_id < 2**63:
            return None
        return self.db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()

    def passage(self, chunk_id: int) -> sqlite3.Row | None:
        """A passage by id, with the pixel size of its figure when it is a figure's text."""
        if not 0 < chunk_id < 2**63:
            return None
        return self.db.execute(
            "SELECT c.id, c.doc_id, c.kind, c.text, c.page, c.page_end, f.width, f.height "
            "FROM chunks c LEFT JOIN figures f ON f.id = c.figure_id WHERE c.id = ?",
            (chunk_id,)).fetchone()

    def figure_file(self, sha256: str) -> Path | None:
        """The PNG of an indexed figure, by its hash."""
        row = self.db.execute("SELECT path FROM figures WHERE sha256 = ? LIMIT 1",
                              (sha256,)).fetchone()
        return self.dir.root / row["path"] if row else None

    # ----------------------------------------------------------------------------- status

    def status(self) -> dict:
        """What is indexed: documents with course, pages, passages and figures; model; size."""
        docs = [
            {"file": r["name"], "course": r["course"],
             "course_label": course_label(r["course"], r["title"]), "pages": r["pages"],
             "passages": r["passages"], "figures": r["figures"], "sha256": r["sha256"],
             "indexed_at": r["indexed_at"]}
            for r in self.db.execute(
                "SELECT d.*, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) AS passages, "
                "(SELECT count(*) FROM figures f WHERE f.doc_id = d.id) AS figures "
                "FROM documents d ORDER BY d.name")
        ]
        pending = self.db.execute("SELECT count(*) FROM figures WHERE ocr_done = 0").fetchone()[0]
        size = sum(p.stat().st_size for p in self.generation.iterdir())
        return {
            "index": str(self.dir.root), "notes_dir": self.meta.get("notes_dir"),
            "model": self.model_name, "dimension": int(self.meta["dim"]),
            "format_version": store.FORMAT_VERSION, "built_at": self.meta.get("built_at"),
            "documents": docs, "passages": sum(d["passages"] for d in docs),
            "figures_ocr_pending": pending, "size_bytes": size,
            "fast_query_path": find_export(self.model_name, self.dir) is not None,
        }


def _check_query(query: str, k: int, mode: str) -> str:
    query = normalise(query or "").strip()
    if not query:
        raise BadQuery("the query is empty; type what you are looking for")
    if k < 1:
        raise BadQuery(f"-k must be at least 1, not {k}")
    if mode not in RANKERS:
        raise BadQuery(f"--mode must be one of {', '.join(rank.MODES)}, not {mode!r}")
    return query


class _Builder:
    """One run of `NoteIndex.build`, holding the write lock throughout."""

    def __init__(self, notes_dir: Path, index_dir: Path, model: str | None, ocr: bool,
                 rebuild: bool, progress: bool, warn: Warn) -> None:
        self.notes_dir = notes_dir
        self.dir = layout.IndexDir(index_dir)
        self.requested_model = model
        self.ocr = ocr
        self.rebuild = rebuild
        self.progress = progress
        self.warn = warn
        self.report = BuildReport()
        self._embedder: Embedder | None = None
        self.upgraded = False  # an older index format was migrated: commit even if no PDF changed

    def run(self) -> BuildReport:
        started = time.perf_counter()
        pdfs = find_pdfs(self.notes_dir, self.warn, self.report.failed)
        with self.dir.write_lock():
            self.model_name = self._choose_model()
            self._text_phase(pdfs)
            if self.ocr:
                self._ocr_phase()
            self._collect_garbage()
        self.report.seconds = time.perf_counter() - started
        return self.report

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = build_embedder(self.model_name, self.dir)
        return self._embedder

    def _choose_model(self) -> str:
        live = self.dir.current()
        if live is None or self.rebuild:
            return self.requested_model or DEFAULT_MODEL
        db = store.connect(live / layout.DB_NAME, readonly=True)
        try:
            store.check_format(db, self.dir.root, upgrading=True)
            meta = store.get_meta(db)
        except sqlite3.DatabaseError:
            meta = {}
        finally:
            db.close()
        built_with = meta.get("model")
        if not built_with:
            raise IndexMismatch(f"the index at {self.dir.root} is not readable; rebuild it with "
                                "`notesearch index NOTES_DIR --rebuild`")
        if self.requested_model and self.requested_model != built_with:
            raise IndexMismatch(
                f"the index at {self.dir.root} was built with model {built_with!r}; extending it "
                f"with {self.requested_model!r} would mix vector spaces. Rebuild it with "
                f"`notesearch index NOTES_DIR --model {self.requested_model} --rebuild`")
        return built_with

    # --------------------------------------------------------------- generations

    def _begin(self, fresh: bool = False) -> tuple[Path, sqlite3.Connection]:
        """A temporary copy of the live generation's database (or an empty one) to change."""
        temp = self.dir.new_temp()
        db = store.connect(temp / layout.DB_NAME)
        live = self.dir.current()
        if live is not None and not fresh:
            source = store.connect(live / layout.DB_NAME, readonly=True)
            source.backup(db)
            source.close()
        if store.migrate(db) and live is not None and not fresh:
            print("notice: upgrading the index to this version's format", file=sys.stderr)
            self.upgraded = True
        return temp, db

    def _commit(self, temp: Path, db: sqlite3.Connection) -> None:
        meta = store.get_meta(db)
        dim = int(meta["dim"]) if "dim" in meta else self.embedder.dim
        count = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        index = vectors.build(dim, count, store.iter_vectors(db, dim))
        vectors.save(index, temp / layout.VECTORS_NAME)
        with db:
            store.set_meta(db, model=self.model_name, dim=str(dim),
                           format_version=str(store.FORMAT_VERSION),
                           chunker_version=str(CHUNKER_VERSION), built_at=store.now(),
                           notes_dir=str(self.notes_dir.resolve()))
        db.close()
        self.dir.commit(temp)

    # --------------------------------------------------------------- phase 1: text

    def _text_phase(self, pdfs: dict[str, Path]) -> None:
        from tqdm import tqdm

        temp, db = self._begin(fresh=self.rebuild)
        if store.get_meta(db).get("chunker_version", str(CHUNKER_VERSION)) != str(CHUNKER_VERSION):
            print("notice: this version cuts or embeds passages differently; every PDF is "
                  "re-read", file=sys.stderr)
            store.clear(db)
        old = store.documents(db)
        for name in sorted(set(old) - set(pdfs)):
            store.delete_document(db, old[name]["id"])
            self.report.removed.append(name)
        cache = self._ocr_cache()
        for name, path in tqdm(pdfs.items(), desc="reading", unit="pdf", file=sys.stderr,
                               disable=not self.progress, leave=False):
            try:
                sha = file_sha256(path)
            except OSError as exc:
                self._fail(name, f"{name}: cannot read ({exc.strerror or exc})")
                continue
            if name in old and old[name]["sha256"] == sha:
                self.report.unchanged.append(name)
                continue
            try:
                self._index_document(db, name, path, sha, old.get(name), cache)
            except PdfUnreadable as exc:
                self._fail(name, str(exc))
                continue
            (self.report.updated if name in old else self.report.added).append(name)
        cache.close()
        db.commit()
        changed = self.report.added or self.report.updated or self.report.removed
        if changed or self.upgraded or self.dir.current() is None or self.rebuild:
            self._commit(temp, db)
        else:
            db.close()
            shutil.rmtree(temp, ignore_errors=True)

    def _fail(self, name: str, reason: str) -> None:
        self.report.failed[name] = reason
        self.warn(f"skipped {reason}")

    def _index_document(self, db: sqlite3.Connection, name: str, path: Path, sha: str,
                        previous: sqlite3.Row | None, cache) -> None:
        reader = open_pdf(path)
        counts = FigureCounts()
        seen: set[str] = set()
        pages, figures = [], []
        for page, pdf_page in iter_pages(reader, path, self.warn):
            pages.append(page)
            if pdf_page is not None:
                figures.extend(extract_figures(pdf_page, page.number, path, self.dir.figures_dir,
                                               seen, counts, self.warn))
        chunks = chunk_pages(pages)
        ocr_texts = cache.get([f.sha256 for f in figures]) if self.ocr else {}
        figure_chunks = [[*figure_passages(ocr_texts.get(f.sha256, ""), f.page)] for f in figures]
        all_chunks = chunks + [c for per_figure in figure_chunks for c in per_figure]
        vectors = self._vectors(db, all_chunks)  # before the old rows go: they are reused
        course = recognise_course(path.name)
        with db:
            if previous is not None:
                store.delete_document(db, previous["id"])
            doc_id = store.add_document(
                db, name=name, path=str(path.resolve()), sha256=sha, course=course,
                title=COURSES[course] if course else pdf_title(reader, path),
                pages=len(pages), size=path.stat().st_size)
            store.add_pages(db, doc_id, [(p.number, p.text) for p in pages])
            figure_ids: list[int | None] = [None] * len(chunks)
            for figure, passages in zip(figures, figure_chunks, strict=True):
                figure_id = store.add_figure(db, doc_id, figure,
                                             ocr_done=figure.sha256 in ocr_texts)
                figure_ids += [figure_id] * len(passages)
            store.add_chunks(db, doc_id, all_chunks, vectors, figure_ids)
        self.report.figures[name] = vars(counts)

    def _vectors(self, db: sqlite3.Connection, chunks: list[Chunk]) -> np.ndarray:
        """Vectors of these passages, computing only those no earlier build computed."""
        hashes = [store.text_hash(c.embedded_text) for c in chunks]
        known = store.known_vectors(db, hashes)
        todo = sorted({h: c.embedded_text for h, c in zip(hashes, chunks, strict=True)
                       if h not in known}.items())
        if todo:
            fresh = self.embedder.encode([t for _, t in todo], progress=self.progress)
            known.update({h: v.tobytes() for (h, _), v in zip(todo, fresh, strict=True)})
            self.report.passages_embedded += len(todo)
        if not hashes:  # a scan without OCR, a PDF without pages
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack([np.frombuffer(known[h], dtype=np.float32) for h in hashes])

    # --------------------------------------------------------------- phase 2: OCR

    def _ocr_cache(self):
        from .ocr import OcrCache

        return OcrCache(self.dir.ocr_cache)

    def _ocr_phase(self) -> None:
        from .ocr import read_figures

        live = self.dir.current()
        db = store.connect(live / layout.DB_NAME, readonly=True)
        pending = db.execute(
            "SELECT DISTINCT sha256, path FROM figures WHERE ocr_done = 0").fetchall()
        db.close()
        if not pending:
            return
        cache = self._ocr_cache()
        images = {r["sha256"]: self.dir.root / r["path"] for r in pending}
        texts = cache.get(list(images))
        todo = {sha: path for sha, path in images.items() if sha not in texts}
        self.report.figures_ocr_pending = len(todo)
        try:
            for sha, text in read_figures(todo, cache, self.progress):
                texts[sha] = text
                self.report.figures_ocr_read += 1
        finally:
            cache.close()
        temp, db = self._begin()
        rows = db.execute("SELECT id, doc_id, page, sha256 FROM figures WHERE ocr_done = 0")
        by_doc: dict[int, tuple[list[Chunk], list[int | None]]] = {}
        done = []
        for row in rows.fetchall():
            chunks, ids = by_doc.setdefault(row["doc_id"], ([], []))
            for chunk in figure_passages(texts[row["sha256"]], row["page"]):
                chunks.append(chunk)
                ids.append(row["id"])
            done.append(row["id"])
        with db:
            for doc_id, (chunks, ids) in by_doc.items():
                store.add_chunks(db, doc_id, chunks, self._vectors(db, chunks), ids)
            db.executemany("UPDATE figures SET ocr_done = 1 WHERE id = ?", [(i,) for i in done])
        self._commit(temp, db)

    def _collect_garbage(self) -> None:
        """Delete figures and rendered pages that no generation on disk refers to any more
        (their PDFs were removed or changed)."""
        figures: set[str] = set()
        documents: set[str] = set()
        for generation in self.dir.root.glob("gen-*"):
            db = store.connect(generation / layout.DB_NAME, readonly=True)
            figures.update(r[0] for r in db.execute("SELECT path FROM figures"))
            documents.update(r[0] for r in db.execute("SELECT sha256 FROM documents"))
            db.close()
        for png in self.dir.figures_dir.glob("*/*.png"):
            if png.relative_to(self.dir.root).as_posix() not in figures:
                png.unlink(missing_ok=True)
        for png in self.dir.renders_dir.glob("*/*.png"):  # named <document sha256>-p<n>-...
            if png.name.split("-", 1)[0] not in documents:
                png.unlink(missing_ok=True)


def figure_passages(ocr_text: str, page: int) -> Iterator[Chunk]:
    """A figure's OCR lines as passages; the first line is usually the slide title."""
    lines = [line for line in ocr_text.split("\n") if line.strip()]
    if not lines:
        return
    words = " ".join(lines).split()
    for start in range(0, len(words), MAX_WORDS):
        yield Chunk(text=" ".join(words[start:start + MAX_WORDS]), page=page, page_end=page,
                    kind="figure", heading=lines[0])

