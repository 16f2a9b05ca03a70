"""The index folder on disk: generations, the pointer to the live one, and the write lock.

    index/
      CURRENT            name of the live generation, replaced atomically
      gen-<n>/           notes.db (SQLite) + vectors.faiss: one complete, immutable index
      .tmp-<pid>/        a generation being built; renamed to gen-<n> when complete
      figures/ ab/<sha256>.png   content-addressed, shared by all generations
      models/            the embedding model exported to ONNX, for fast queries
      ocr-cache.db       OCR text by image hash
      build.log          full tracebacks of files a build skipped (the terminal gets one line)
      renders/           rendered pages for the web view
      .lock              held (flock) by the one process that builds

A build copies the live generation into a temporary folder, changes the copy, then renames it
into place and swaps CURRENT. Readers only ever open a complete generation, so a crash or Ctrl-C
leaves the previous index answering, and the kernel drops the lock with the dead process.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import IndexBusy, IndexUnwritable

DB_NAME = "notes.db"
VECTORS_NAME = "vectors.faiss"
KEEP_PREVIOUS = 1  # a reader that read CURRENT just before a swap can still open its generation


def index_fault(exc: BaseException, root: Path) -> bool:
    """Whether `exc` is the index's own fault (its disk or folder), not the PDF's."""
    if isinstance(exc, sqlite3.Error):
        return True
    if not isinstance(exc, OSError):
        return False
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return True
    root = root.resolve()
    for name in (exc.filename, exc.filename2):
        if name and Path(os.fsdecode(name)).resolve().is_relative_to(root):
            return True
    return False


class IndexDir:
    """Paths and atomic operations on one index folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    @property
    def models_dir(self) -> Path:
        """The model export when the user cache is read-only, or from before it (`models.py`)."""
        return self.root / "models"

    @property
    def ocr_cache(self) -> Path:
        return self.root / "ocr-cache.db"

    @property
    def renders_dir(self) -> Path:
        return self.root / "renders"

    @property
    def log(self) -> Path:
        return self.root / "build.log"

    def current(self) -> Path | None:
        """The live generation folder, or None when there is no complete one."""
        name = self._pointer()
        if name is None or not _is_generation(name):
            return None
        generation = self.root / name
        complete = all((generation / f).is_file() for f in (DB_NAME, VECTORS_NAME))
        return generation if complete else None

    def pointer_damaged(self) -> bool:
        """Whether CURRENT is there but names no complete generation (garbage written into it,
        or the generation's files deleted): the index is damaged, not missing. A build writes a
        generation whole before CURRENT names it."""
        return (self.root / "CURRENT").is_file() and self.current() is None

    def _pointer(self) -> str | None:
        try:
            return (self.root / "CURRENT").read_text().strip()
        except (OSError, UnicodeDecodeError):  # missing, a file in place of the folder, garbage
            return None

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """Hold the one-writer lock, or raise IndexBusy naming the PID that holds it."""
        if self.root.exists() and not self.root.is_dir():
            raise IndexUnwritable(f"{self.root} is a file, not an index folder; pass --index "
                                  "a folder (new or an existing index)")
        others = self._others_files()
        if others:
            raise IndexUnwritable(
                f"{self.root} holds other files ({', '.join(others[:2])}"
                f"{', ...' if len(others) > 2 else ''}) and no index; pass --index a new or "
                "empty folder (an index writes its own files there)")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise IndexUnwritable(f"cannot write the index folder {self.root} "
                                  f"({exc.strerror or exc}); pass --index a folder you can "
                                  "write") from None
        try:
            try:
                _lock_soon(fd)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise IndexBusy(
                    f"index at {self.root} is being built by PID {holder}; "
                    "wait for it to finish, then run the command again"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            self._remove_stale_temps()
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _others_files(self) -> list[str]:
        """The names in a folder that holds something and no index (no CURRENT, lock, or
        generation finished or not): the notes folder itself, a source tree. A build must not
        write among them. Hidden files (.DS_Store, .gitkeep) and an index's own files (an OCR
        cache copied in to reuse its work) are no one else's."""
        try:
            names = sorted(p.name for p in self.root.iterdir())
        except OSError:  # missing (a new index), or unreadable: the lock says so
            return []
        if any(n in ("CURRENT", ".lock") or n.startswith(".tmp-") or _is_generation(n)
               for n in names):
            return []
        own = {p.name for p in (self.figures_dir, self.models_dir, self.renders_dir, self.log)}
        own |= {self.ocr_cache.name + suffix for suffix in ("", "-wal", "-shm")}
        return [n for n in names if not n.startswith(".") and n not in own]

    def builder(self) -> str | None:
        """The PID of the build holding the write lock now, or None when none is running."""
        try:
            fd = os.open(self.root / ".lock", os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # held for an instant: see _lock_soon
        except BlockingIOError:
            return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        finally:
            os.close(fd)
        return None

    def new_temp(self) -> Path:
        """A fresh folder to build the next generation in (the caller holds the lock)."""
        self.drop_temp()
        temp = self._temp
        temp.mkdir(parents=True)
        return temp

    def drop_temp(self) -> None:
        """Remove this process's unfinished generation, if any (a build failed or ended)."""
        shutil.rmtree(self._temp, ignore_errors=True)

    @property
    def _temp(self) -> Path:
        return self.root / f".tmp-{os.getpid()}"

    def commit(self, temp: Path) -> Path:
        """Make `temp` the live generation: durable files, rename, atomic pointer swap."""
        for item in temp.iterdir():
            _fsync(item)
        number = 1 + max((int(p.name[4:]) for p in self._generations()), default=0)
        generation = self.root / f"gen-{number:06d}"
        temp.rename(generation)
        pointer = self.root / "CURRENT.part"
        pointer.write_text(generation.name + "\n")
        _fsync(pointer)
        pointer.replace(self.root / "CURRENT")
        _fsync(self.root)
        for old in self._generations()[: -(KEEP_PREVIOUS + 1)]:
            shutil.rmtree(old, ignore_errors=True)
        return generation

    def _generations(self) -> list[Path]:
        return sorted(p for p in self.root.glob("gen-*") if p.name[4:].isdigit())

    def _remove_stale_temps(self) -> None:
        for temp in self.root.glob(".tmp-*"):
            shutil.rmtree(temp, ignore_errors=True)
        for part in self.root.glob("*.part"):
            part.unlink(missing_ok=True)


def _is_generation(name: str) -> bool:
    return name.startswith("gen-") and "/" not in name


def _lock_soon(fd: int) -> None:
    """Take the write lock, retrying for a moment: `IndexDir.builder` may hold it shared for
    an instant to see whether a build is running."""
    for _attempt in range(20):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(0.01)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
