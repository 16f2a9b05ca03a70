"""`notesearch index NOTES_DIR --watch`: keep an index in step with a notes folder until stopped.

Events from watchfiles only wake the loop up. What to do is decided from a snapshot of the
folder (size and modification time of every notes file and image), so a burst of events, a
missed event and a file still being copied all come down to one question: has the folder held
still, for at least SETTLE_SECONDS, in a state the index does not reflect yet? Only then is it
built.

A file that fails because it was still being written when the build read it is not reported:
its snapshot entry has moved on, so the next settled state builds it again. A file that fails
with the same size and time twice is reported once, not at every build.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .build import BuildReport, warn_on_stderr
from .errors import IndexBusy, NotesearchError, NotesNotFound
from .extract import Warn
from .index import NoteIndex
from .sources import NotesFolder, watched_files

Stamp = tuple[int, int]  # (size in bytes, mtime in ns)
Snapshot = dict[str, Stamp]  # relative file name -> stamp

SETTLE_SECONDS = 1.0  # the debounce: a folder must hold still this long before a build
TICK_MS = 500  # how often a pending change is re-checked when no event arrives
EVENT_DEBOUNCE_MS = 1000  # watchfiles groups a burst of events for at most this long


def snapshot(notes_dir: Path, index_dir: Path) -> Snapshot:
    """Size and mtime of each file a build would read (see `sources.watched_files`); an index
    kept inside the notes folder is left out, or each build it writes would wake the next."""
    if not notes_dir.is_dir():
        return {}
    stamps: Snapshot = {}
    for name, path in watched_files(NotesFolder(notes_dir, skip=index_dir)).items():
        try:
            status = path.stat()
        except OSError:  # removed between the listing and the stat
            continue
        stamps[name] = (status.st_size, status.st_mtime_ns)
    return stamps


class OnceWarn:
    """Pass each distinct warning on once: a watch rebuilds often and must not repeat itself."""

    def __init__(self, warn: Warn) -> None:
        self._warn = warn
        self._seen: set[str] = set()

    def __call__(self, message: str) -> None:
        if message not in self._seen:
            self._seen.add(message)
            self._warn(message)


class _Watcher:
    """The state between two wake-ups: what the index reflects and what the folder shows."""

    def __init__(self, notes_dir: Path, index_dir: Path, model: str | None, ocr: bool,
                 on_report: Callable[[BuildReport], None], warn: Warn) -> None:
        self.notes_dir = notes_dir
        self.index_dir = index_dir
        self.model = model
        self.ocr = ocr
        self.on_report = on_report
        self.warn = OnceWarn(warn)
        self.indexed: Snapshot | None = None  # None: unknown, so the first check catches up
        self.seen: Snapshot | None = None
        self.seen_since = 0.0
        self.pending = True
        self.reported_failures: Snapshot = {}

    def tick(self, woken: bool) -> None:
        """Build when the folder differs from the index and has held still long enough."""
        if not (woken or self.pending):
            return
        now = snapshot(self.notes_dir, self.index_dir)
        if now == self.indexed:
            self.pending = False
            return
        self.pending = True
        if now != self.seen:
            self.seen, self.seen_since = now, time.monotonic()
            return
        if time.monotonic() - self.seen_since >= SETTLE_SECONDS:
            self._build(now)

    def _build(self, before: Snapshot) -> None:
        try:
            report = NoteIndex.build(self.notes_dir, self.index_dir, model=self.model,
                                     ocr=self.ocr, warn=self.warn)
        except IndexBusy as exc:  # another writer: try again once the folder settles anew
            self.warn(str(exc))
            self.seen_since = time.monotonic()
            return
        except NotesearchError as exc:  # e.g. the last note was removed: wait for a change
            self.warn(str(exc))
            self.indexed, self.pending = before, False
            return
        except Exception as exc:  # a bug must not end a watch left running for hours
            self.warn(f"build failed ({type(exc).__name__}: {exc}); the index is as it was, "
                      "and the next change to the folder is tried again")
            self.indexed, self.pending = before, False
            return
        self.indexed = before
        self._forget_files_in_flight(report, before)
        if self._worth_reporting(report, before):
            self.on_report(report)

    def _forget_files_in_flight(self, report: BuildReport, before: Snapshot) -> None:
        """Drop failures of files that changed while being read: they are retried, not failed."""
        after = snapshot(self.notes_dir, self.index_dir)
        for name in [n for n in report.failed if after.get(n) != before.get(n)]:
            del report.failed[name]
            self.pending = True

    def _worth_reporting(self, report: BuildReport, before: Snapshot) -> bool:
        """A build that changed the index, or found a failure not reported for this content."""
        failures = {name: before[name] for name in report.failed if name in before}
        fresh = any(self.reported_failures.get(n) != stamp for n, stamp in failures.items())
        self.reported_failures = failures
        return bool(report.added or report.updated or report.removed or fresh)


def watch_notes(notes_dir: Path | str, index_dir: Path | str, *, model: str | None = None,
                ocr: bool = True, on_report: Callable[[BuildReport], None] | None = None,
                stop_event: threading.Event | None = None, warn: Warn = warn_on_stderr,
                built: tuple[Snapshot, BuildReport] | None = None) -> None:
    """Rebuild the index whenever notes in `notes_dir` (or their images) are added, changed or
    removed.

    Runs until `stop_event` is set or Ctrl-C; Ctrl-C is how a user ends a watch, so it returns
    normally (a build it interrupts leaves the index whole, with the steps it finished:
    commits are atomic). The first check brings the index up to date, so changes made just
    before watching are not lost; `built`, the folder's snapshot taken before a build the
    caller just ran and that build's report, saves building and reporting it a second time.
    """
    import watchfiles

    # watchfiles logs "KeyboardInterrupt caught, stopping watch" on Ctrl-C: the user knows.
    logging.getLogger("watchfiles.main").setLevel(logging.ERROR)
    notes_dir, index_dir = Path(notes_dir), Path(index_dir)
    if not notes_dir.is_dir():
        raise NotesNotFound(f"notes folder {notes_dir} does not exist or is not a folder; pass "
                            "the folder that holds your notes (PDF or Markdown files)")
    watcher = _Watcher(notes_dir, index_dir, model, ocr, on_report or (lambda _r: None), warn)
    if built is not None:
        watcher.indexed, report = built
        watcher.reported_failures = {n: built[0][n] for n in report.failed if n in built[0]}
    try:
        for changes in watchfiles.watch(
                notes_dir, watch_filter=None, debounce=EVENT_DEBOUNCE_MS, rust_timeout=TICK_MS,
                yield_on_timeout=True, stop_event=stop_event, raise_interrupt=False):
            if stop_event is not None and stop_event.is_set():
                return
            watcher.tick(woken=bool(changes))
    except KeyboardInterrupt:
        return
