"""Building an index: one run of `NoteIndex.build`, from a notes folder to a committed generation.

The build owns the write side: finding the notes files, reading each one through its format's
source module (notesearch.sources) behind its own fault barrier (a bad file costs that file,
never the build), embedding only what changed, the two atomic
commits (text first, so search works while OCR runs; then the OCR text of figures and of
scanned pages), and garbage collection. A scanned page (no usable text layer under a page-sized
image) is read by full-page OCR and becomes prose: its lines are the page's text, cut into
passages like any typed page's. Only faults of the index itself (disk full, no permission) end
a build, and then the previous generation keeps answering.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import hints, layout, sources, store, vectors
from .chunk import CHUNKER_VERSION, MAX_WORDS, chunk_pages
from .courses import recognise_course
from .embed import DEFAULT_MODEL, Embedder
from .errors import (
    IndexMismatch,
    IndexUnwritable,
    NotesearchError,
    NoteUnreadable,
    one_line,
)
from .extract import Warn
from .hashing import file_sha256
from .layout import index_fault
from .models import build_embedder, find_export
from .progress import bar
from .records import Chunk, Document, Page, PendingScan, StoredDocument
from .textnorm import clean_page_text
from .wording import counted

if TYPE_CHECKING:  # OCR (rapidocr, onnxruntime sessions) loads only when a build uses it
    from .ocr import OcrCache

# Scanned pages are rendered for OCR at this resolution, at most SCAN_MAX_SIDE pixels a side:
# sharp enough for 9-point type, and OCR time grows with the pixels.
SCAN_DPI = 150
SCAN_MAX_SIDE = 2400


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
    # images (figures and scanned pages) whose text is still unread when the build ends, as
    # `status` counts them (it counted those sent to OCR: 0 after a --no-ocr build)
    figures_ocr_pending: int = 0
    scans_ocr_read: int = 0
    ocr_failed: int = 0  # images OCR could not read, left for the next build
    seconds: float = 0.0
    ocr: bool = True
    log: str = ""  # where the tracebacks of skipped files are, when any file was skipped

    def summary(self) -> str:
        line = (f"added {len(self.added)}, updated {len(self.updated)}, "
                f"removed {len(self.removed)}, unchanged {len(self.unchanged)}; "
                f"embedded {counted(self.passages_embedded, 'passage')}")
        if self.figures_ocr_read or self.scans_ocr_read:
            line += (f"; OCR read {counted(self.figures_ocr_read, 'figure')} and "
                     f"{counted(self.scans_ocr_read, 'scanned page')}")
        if self.ocr_failed:
            line += (f"; {counted(self.ocr_failed, 'image')} could not be OCR'd (warnings above; "
                     "the next build tries them again)")
        if not self.ocr:
            line += "; figures and scanned pages not OCR'd (--no-ocr)"
        if self.failed:
            line += f"; {len(self.failed)} skipped (reasons above)"
        return f"{line} ({self.seconds:.1f} s)"


def _last_document_id(generation: Path) -> int:
    """`store.last_document_id` of a generation; 0 when it cannot be read (a rebuild is how a
    damaged index recovers)."""
    try:
        with closing(store.connect(generation / layout.DB_NAME, readonly=True)) as db:
            return store.last_document_id(db)
    except (sqlite3.Error, OSError, ValueError):
        return 0


class Builder:
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
        self.report = BuildReport(ocr=ocr)
        self._embedder: Embedder | None = None
        self.upgraded = False  # an older index format was migrated: commit even if no PDF changed

    def run(self) -> BuildReport:
        started, began = time.perf_counter(), time.time()
        # The index may lie inside the notes folder: its figures are no notes' images.
        self.folder = sources.NotesFolder(self.notes_dir, skip=self.dir.root)
        notes = sources.find_notes(self.folder, self.warn, self.report.failed,
                                   may_be_empty=self._built_from_this_folder())
        with self.dir.write_lock():
            try:
                self.model_name = self._choose_model()
                self._text_phase(notes)
                self._export_query_model()
                if self.ocr:
                    self._ocr_phase()
                self._collect_garbage()
                self.report.figures_ocr_pending = self._still_pending()
            except NotesearchError:
                raise
            except Exception as exc:
                if not index_fault(exc, self.dir.root):
                    raise
                self.dir.drop_temp()
                with suppress(OSError):  # what this build saved is no generation's: it would
                    self._collect_garbage(since=began)  # keep the disk full
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise IndexUnwritable(
                    f"could not write the index at {self.dir.root} ({reason}); the previous "
                    "index still answers. Free some disk space or pass --index a folder you can "
                    "write, then run the same command again") from exc
            finally:
                self.dir.drop_temp()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _built_from_this_folder(self) -> bool:
        """Whether the live index was built from this very notes folder: then the folder
        holding no notes means the learner removed them all, and the index follows."""
        live = self.dir.current()
        if live is None or self.rebuild:
            return False
        try:
            with closing(store.connect(live / layout.DB_NAME, readonly=True)) as db:
                return self._indexes_this_folder(db)
        except sqlite3.Error:  # damaged: `_choose_model` says so
            return False

    def _indexes_this_folder(self, db: sqlite3.Connection) -> bool:
        """Whether the index in `db` was built from this notes folder (where it now is)."""
        return store.get_meta(db).get("notes_dir") == str(self.notes_dir.resolve())

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = build_embedder(self.model_name, self.dir)
        return self._embedder

    def _export_query_model(self) -> None:
        """Make sure the fast query model searches look for exists (it is exported when the
        model first loads): a build with nothing to embed, on a machine or cache that never
        had it, left every search on the slow path, while the notice said to run a build."""
        if self._embedder is None and find_export(self.model_name, self.dir) is None:
            self._embedder = build_embedder(self.model_name, self.dir)  # OCR may embed too

    def _choose_model(self) -> str:
        live = self.dir.current()
        if live is None or self.rebuild:
            return self.requested_model or DEFAULT_MODEL
        db = store.connect(live / layout.DB_NAME, readonly=True)
        try:
            state = store.format_state(db)
            meta = store.get_meta(db) if state in ("current", "older") else {}
        finally:
            db.close()
        if state not in ("current", "older") or not meta.get("model"):
            raise IndexMismatch(hints.index_problem(self.dir.root, state, self.notes_dir))
        built_with = meta["model"]
        if self.requested_model and self.requested_model != built_with:
            raise IndexMismatch(
                f"the index at {self.dir.root} was built with model {built_with!r}; extending it "
                f"with {self.requested_model!r} would mix vector spaces. Rebuild it with `"
                + hints.index_command(self.dir.root, self.notes_dir, "--model",
                                      self.requested_model, "--rebuild") + "`")
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
        if live is not None and fresh:  # a rebuild gives no note an id the old index used
            with db:
                store.set_meta(db, last_doc_id=str(_last_document_id(live)))
        return temp, db

    def _commit(self, temp: Path, db: sqlite3.Connection) -> None:
        meta = store.get_meta(db)
        dim = int(meta["dim"]) if "dim" in meta else self.embedder.dim
        index = vectors.build(dim, store.passage_count(db), store.iter_vectors(db, dim))
        vectors.save(index, temp / layout.VECTORS_NAME)
        with db:
            store.set_meta(db, model=self.model_name, dim=str(dim),
                           format_version=str(store.FORMAT_VERSION),
                           chunker_version=str(CHUNKER_VERSION), built_at=store.now(),
                           notes_dir=str(self.notes_dir.resolve()),
                           ocr="on" if self.ocr else "off")
        db.close()
        self.dir.commit(temp)

    # --------------------------------------------------------------- phase 1: text

    def _text_phase(self, notes: dict[str, Path]) -> None:
        temp, db = self._begin(fresh=self.rebuild)
        if store.get_meta(db).get("chunker_version", str(CHUNKER_VERSION)) != str(CHUNKER_VERSION):
            print("notice: this version cuts or embeds passages differently; every notes file "
                  "is re-read", file=sys.stderr)
            store.clear(db)
        old = store.documents(db)
        self._check_same_notes(db, sorted(set(old) - set(notes)))
        for name in sorted(set(old) - set(notes)):
            store.delete_document(db, old[name].id)
            self.report.removed.append(name)
        cache = self._ocr_cache()
        with bar("reading", len(notes), "files", self.progress) as shown:
            for name, path in notes.items():
                self._bring_up_to_date(db, name, path, old.get(name), cache)
                shown.update()
        cache.close()
        db.commit()
        changed = self.report.added or self.report.updated or self.report.removed
        moved = not self._indexes_this_folder(db)
        if changed or moved or self.upgraded or self.dir.current() is None or self.rebuild:
            self._commit(temp, db)
        else:
            db.close()

    def _check_same_notes(self, db: sqlite3.Connection, leaving: list[str]) -> None:
        """Refuse to drop notes that are still where the index found them: indexing another
        folder into an index keeps it in step with that folder, so every note of the first
        folder would go (their OCR text stays cached, their reading and embedding do not).
        Notes gone from their folder (moved with it, or deleted) go as asked."""
        built_from = store.get_meta(db).get("notes_dir")
        if self.rebuild or not built_from or self._indexes_this_folder(db):
            return
        still_there = [name for name in leaving if (Path(built_from) / name).is_file()]
        if still_there:
            named = ", ".join(still_there[:2]) + (", ..." if len(still_there) > 2 else "")
            raise IndexMismatch(
                f"the index at {self.dir.root} holds {counted(len(still_there), 'note')} of "
                f"{built_from} that {self.notes_dir} does not have ({named}); indexing it here "
                "would remove them. Give it an index of its own with `"
                + hints.index_command(self._new_sibling(), self.notes_dir) + "`, or replace them "
                "with `" + hints.index_command(self.dir.root, self.notes_dir, "--rebuild") + "`")

    def _new_sibling(self) -> Path:
        """A folder beside this index that holds nothing yet: `index-2`, `index-3`..."""
        number = 2
        while (sibling := self.dir.root.with_name(f"{self.dir.root.name}-{number}")).exists():
            number += 1
        return sibling

    def _bring_up_to_date(self, db: sqlite3.Connection, name: str, path: Path,
                          previous: StoredDocument | None, cache: OcrCache) -> None:
        """Index one notes file if it is new or changed; any fault of the file skips it alone."""
        reader = sources.reader_for(path)
        try:
            sha = reader.fingerprint(path, self.folder)
            if previous is not None and previous.sha256 == sha and \
                    not self._figures_lost(db, name, previous):
                self.report.unchanged.append(name)
                if previous.path != str(path.resolve()):  # the notes folder was moved
                    store.move_document(db, previous.id, str(path.resolve()))
                return
            read = reader.read(path, self.folder, self.dir.figures_dir, self.warn)
        except NoteUnreadable as exc:  # a reason known to be the file's; log what caused it
            self._fail(name, str(exc), exc if exc.__cause__ is not None else None)
            return
        except NotesearchError:
            raise
        except Exception as exc:  # the fault barrier: whatever a PDF makes a library raise
            if index_fault(exc, self.dir.root):
                raise
            self._fail(name, f"{name}: could not be read ({type(exc).__name__}: "
                             f"{one_line(exc)})", exc)
            return
        self._store(db, name, path, sha, previous, read, cache)
        (self.report.updated if previous is not None else self.report.added).append(name)

    def _figures_lost(self, db: sqlite3.Connection, name: str, previous: StoredDocument
                      ) -> bool:
        """Whether images of an unchanged note are gone from the index folder (deleted by
        hand): then the note is read again, which saves them anew (its passages keep their
        vectors and its figures their OCR text: both are found by hash, nothing is recomputed).
        Without this the page view lost them, and OCR failed on them at every build."""
        lost = [p for p in store.figure_paths_of(db, previous.id)
                if not (self.dir.root / p).is_file()]
        if lost:
            self.warn(f"{len(lost)} figure images of {name} were missing from the index folder; "
                      "reading it again to restore them")
        return bool(lost)

    def _fail(self, name: str, reason: str, exc: BaseException | None = None) -> None:
        self.report.failed[name] = reason
        self.warn(f"skipped {reason}")
        if exc is not None:
            self._log(name, exc)

    def _log(self, name: str, exc: BaseException) -> None:
        """The full traceback, for a bug report; the terminal only gets the one-line reason."""
        try:
            with self.dir.log.open("a", encoding="utf-8") as log:
                log.write(f"--- {store.now()} {name}\n")
                log.write("".join(traceback.format_exception(exc)))
            self.report.log = str(self.dir.log)
        except OSError:
            pass  # a log that cannot be written must not cost the file a second time

    def _store(self, db: sqlite3.Connection, name: str, path: Path, sha: str,
               previous: StoredDocument | None, read: Document, cache: OcrCache) -> None:
        scan_keys = {number: scan_key(sha, number) for number in read.scans}
        ocr_texts = (cache.get([f.sha256 for f in read.figures] + list(scan_keys.values()))
                     if self.ocr else {})
        page_sources: dict[int, str] = {}
        scanned: dict[int, list[store.Line]] = {}
        for page in read.pages:
            if page.number in scan_keys:
                value = ocr_texts.get(scan_keys[page.number])
                if value is None:
                    page_sources[page.number] = "scan"
                else:
                    scanned[page.number] = scan_lines(value)
                    page.text = scan_text(scanned[page.number])
                    page_sources[page.number] = "ocr"
        figure_chunks = [[*figure_passages(ocr_texts.get(f.sha256, ""), f.page)]
                         for f in read.figures]
        text_chunks = chunk_pages(read.pages)
        all_chunks = text_chunks + [c for per_figure in figure_chunks for c in per_figure]
        vectors = self._vectors(db, all_chunks)  # before the old rows go: they are reused
        course = recognise_course(path.name) or recognise_course(read.title)
        with db:
            if previous is not None:
                store.delete_document(db, previous.id)
            doc_id = store.add_document(
                db, name=name, path=str(path.resolve()), sha256=sha, course=course,
                title=read.title, pages=len(read.pages), size=path.stat().st_size,
                format=read.format)
            store.add_pages(db, doc_id, read.pages, page_sources)
            for number, lines in scanned.items():
                store.set_page_lines(db, doc_id, number, lines)
            figure_ids: list[int | None] = [None] * len(text_chunks)
            for figure, passages in zip(read.figures, figure_chunks, strict=True):
                figure_id = store.add_figure(db, doc_id, figure,
                                             ocr_done=figure.sha256 in ocr_texts)
                figure_ids += [figure_id] * len(passages)
            store.add_chunks(db, doc_id, all_chunks, vectors, figure_ids)
        self.report.figures[name] = vars(read.counts)

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

    def _ocr_cache(self) -> OcrCache:
        from .ocr import OcrCache

        return OcrCache(self.dir.ocr_cache)

    def _still_pending(self) -> int:
        live = self.dir.current()
        if live is None:
            return 0
        with closing(store.connect(live / layout.DB_NAME, readonly=True)) as db:
            return store.ocr_pending(db)

    def _ocr_phase(self) -> None:
        from .ocr import read_figures

        live = self.dir.current()
        db = store.connect(live / layout.DB_NAME, readonly=True)
        pending = store.figures_pending(db)
        scans = store.scans_pending(db)
        db.close()
        if not pending and not scans:
            return
        cache = self._ocr_cache()
        images = {sha: self.dir.root / path for sha, path in pending.items()}
        keys = {(s.doc_id, s.number): scan_key(s.sha256, s.number) for s in scans}
        texts = cache.get([*images, *keys.values()])
        with tempfile.TemporaryDirectory(prefix=".tmp-scans-", dir=self.dir.root) as folder:
            todo = {sha: path for sha, path in images.items() if sha not in texts}
            todo.update(self._render_scans(
                [s for s in scans if keys[s.doc_id, s.number] not in texts], Path(folder)))
            try:
                # closing: on Ctrl-C here, the OCR pool stops now, not when garbage is collected
                with closing(read_figures(todo, cache, self.progress, warn=self.warn,
                                          pages=frozenset(keys.values()))) as results:
                    for sha, text in results:
                        if text is None:  # warned about; stays pending for the next build
                            self.report.ocr_failed += 1
                            continue
                        texts[sha] = text
                        if sha in images:
                            self.report.figures_ocr_read += 1
                        else:
                            self.report.scans_ocr_read += 1
            finally:
                cache.close()
        temp, db = self._begin()
        by_doc: dict[int, tuple[list[Chunk], list[int | None]]] = {}
        done = []
        for figure in store.figure_rows_pending(db):
            if figure.sha256 not in texts:
                continue
            chunks, ids = by_doc.setdefault(figure.doc_id, ([], []))
            for chunk in figure_passages(texts[figure.sha256], figure.page):
                chunks.append(chunk)
                ids.append(figure.id)
            done.append(figure.id)
        read = {key: scan_lines(texts[k]) for key, k in keys.items() if k in texts}
        with db:
            for doc_id, (chunks, ids) in by_doc.items():
                store.add_chunks(db, doc_id, chunks, self._vectors(db, chunks), ids)
            store.mark_figures_read(db, done)
            for doc_id in sorted({doc_id for doc_id, _ in read}):
                self._store_scans(db, doc_id, {n: t for (d, n), t in read.items() if d == doc_id})
        self._commit(temp, db)

    def _render_scans(self, scans: list[PendingScan], folder: Path) -> dict[str, Path]:
        """Each scanned page as a grey PNG in `folder`, by its OCR cache key. A page that
        cannot be rendered (its PDF gone or changed since) is warned about and stays pending."""
        from .render_page import render_for_ocr

        rendered = {}
        for scan in scans:
            key = scan_key(scan.sha256, scan.number)
            target = folder / f"{key}.png"
            try:
                if file_sha256(Path(scan.path)) != scan.sha256:
                    raise FileNotFoundError("changed since it was read")
                render_for_ocr(Path(scan.path), scan.number, target, SCAN_DPI, SCAN_MAX_SIDE)
            except Exception as exc:  # this page's fault barrier
                if index_fault(exc, self.dir.root):
                    raise
                self.warn(f"{Path(scan.path).name} p. {scan.number}: scanned page not "
                          f"rendered for OCR ({type(exc).__name__}: {one_line(exc)})")
                continue
            rendered[key] = target
        return rendered

    def _store_scans(self, db: sqlite3.Connection, doc_id: int,
                     read: dict[int, list[store.Line]]) -> None:
        """Give a document's scanned pages their OCR text and cut its prose again, all pages
        together, exactly as a first build that found the text in the OCR cache would."""
        for number, lines in read.items():
            store.set_page_text(db, doc_id, number, scan_text(lines), "ocr")
            store.set_page_lines(db, doc_id, number, lines)
        chunks = chunk_pages(Page(n, t) for n, t in store.page_texts(db, doc_id))
        vectors = self._vectors(db, chunks)  # before the old passages go: they are reused
        store.delete_text_chunks(db, doc_id)
        store.add_chunks(db, doc_id, chunks, vectors)

    def _collect_garbage(self, since: float | None = None) -> None:
        """Delete figures and rendered pages that no generation on disk refers to any more
        (their PDFs were removed or changed). A generation that cannot be read (a damaged one
        left from before a --rebuild) keeps nothing alive, so after a failed build (`since`:
        when it started, by the wall clock) only files written since then go: a generation
        that failed to open then must not cost the live index its figures."""
        figures: set[str] = set()
        documents: set[str] = set()
        databases = (generation / layout.DB_NAME for generation in self.dir.root.glob("gen-*"))
        for paths, hashes in store.read_each(databases, store.referenced_files):
            figures.update(paths)
            documents.update(hashes)
        for png in self.dir.figures_dir.glob("*/*.png"):
            if png.relative_to(self.dir.root).as_posix() not in figures:
                _delete(png, since)
        for png in self.dir.renders_dir.glob("*/*.png"):  # named <document sha256>-p<n>-...
            if png.name.split("-", 1)[0] not in documents:
                _delete(png, since)


def _delete(path: Path, written_since: float | None) -> None:
    """Delete a file (if written at or after `written_since`, when given)."""
    with suppress(FileNotFoundError):
        if written_since is None or path.stat().st_mtime >= written_since:
            path.unlink()


def scan_key(document_sha256: str, number: int) -> str:
    """The OCR cache key of a scanned page: its document's content, the page, and how pages
    are rendered for OCR (no image hash is known before the page is rendered)."""
    return hashlib.sha256(f"scan-page-2 {SCAN_DPI} {SCAN_MAX_SIDE} {document_sha256} {number}"
                          .encode()).hexdigest()


def scan_lines(ocr_value: str) -> list[store.Line]:
    """A scanned page's OCR lines with their boxes, as `ocr.page_lines` wrote them (the text
    of a page that could not be read is empty)."""
    try:
        return [(str(t), float(x), float(y), float(w), float(h))
                for t, x, y, w, h in json.loads(ocr_value)]
    except ValueError:
        return []


def scan_text(lines: list[store.Line]) -> str:
    """A scanned page's OCR lines as page text, normalised like a text layer's."""
    return clean_page_text("\n".join(line[0] for line in lines))


def figure_passages(ocr_text: str, page: int) -> Iterator[Chunk]:
    """A figure's OCR lines as passages; the first line is usually the slide title."""
    lines = [line for line in ocr_text.split("\n") if line.strip()]
    if not lines:
        return
    words = " ".join(lines).split()
    for start in range(0, len(words), MAX_WORDS):
        yield Chunk(text=" ".join(words[start:start + MAX_WORDS]), page=page, page_end=page,
                    kind="figure", heading=lines[0])
