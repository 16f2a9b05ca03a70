"""Text inside figures, read by RapidOCR (ONNX models shipped in the wheel, runs offline).

OCR is the slow part of a build (one to two CPU-seconds a slide), so it runs on every core, one
worker process per core with exactly one compute thread each (more threads per worker only
fight over the same cores), and every result is cached by image hash the moment it is known: a
build that is interrupted, repeated, or meets the same slide in another PDF never reads an image
twice. One bad image (corrupt file, RapidOCR raising, a worker dying) costs that image only.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

from .errors import OcrUnavailable

# Lines the recogniser is less sure of are mostly handwriting and arrows read as letters.
MIN_LINE_CONFIDENCE = 0.7
ENGINE = "rapidocr-3"
# The smallest side that can hold one readable line of text (glyphs of ~8 px plus a margin).
MIN_TEXT_SIDE = 10
# A figure whose every channel (alpha too) varies by less than this has no visible strokes.
MIN_TONE_SPREAD = 16
# Read by OpenMP, OpenBLAS and MKL when they load: must be set before numpy/cv2 are imported.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_engine = None


def single_thread_engine():
    """A RapidOCR engine computing on one thread: onnxruntime intra/inter-op and OpenCV.

    Call it in a process started with `THREAD_ENV` set to "1" (an `ocr_pool` worker), or
    numpy's BLAS keeps its own thread pool.
    """
    import cv2
    from rapidocr import RapidOCR

    cv2.setNumThreads(1)
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    return RapidOCR(params={
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    })


def _worker_init() -> None:
    """Load the engine; leave Ctrl-C to the build process.

    A terminal's Ctrl-C reaches every process of the group: a worker would turn it into a
    KeyboardInterrupt result for its image and take the next one, while the build process
    stops the pool, waiting only for the images being read (`_run_pool`; their text is not
    kept: the next build reads them again).
    """
    global _engine
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _engine = single_thread_engine()


def _started() -> bool:
    """A first task: it runs once a worker has started and loaded the engine."""
    return True


@contextmanager
def ocr_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of OCR worker processes, each loading the engine once, on one thread.

    `THREAD_ENV` is "1" in this process while the pool lives, so every worker starts with it:
    setting it in the worker's initializer would be too late when the caller's `__main__`
    imports numpy, because a spawned worker imports that module first. Workers are spawned on
    demand, hence for the pool's whole life; this process's own libraries are already loaded.
    """
    saved = {name: os.environ.get(name) for name in THREAD_ENV}
    os.environ.update(dict.fromkeys(THREAD_ENV, "1"))
    try:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                 initializer=_worker_init) as pool:
            try:  # a worker that cannot start would otherwise fail every image in turn
                pool.submit(_started).result()
            except BrokenProcessPool:
                raise OcrUnavailable(
                    "OCR worker processes could not start (their error is above); the notes' "
                    "text is indexed and the next build reads the figures. A script calling "
                    "NoteIndex.build must keep its code under `if __name__ == \"__main__\":`, "
                    "because each worker imports the script again") from None
            yield pool
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def no_room_for_text(path: Path) -> str | None:
    """Why this image cannot hold readable text (too small, one flat colour), or None.

    Opening the image also fully decodes it, so a corrupt file raises here, before OCR.
    """
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if min(image.size) < MIN_TEXT_SIDE:
            return f"{image.width}x{image.height} px is too small to hold a line of text"
        # alpha counts: black text on a transparent background has flat colour channels, and
        # RapidOCR lays such an image over a contrasting background before reading it
        extrema = image.convert("RGBA").getextrema()
    if all(high - low < MIN_TONE_SPREAD for low, high in extrema):
        return "one flat colour"
    return None


def _confident(text: str, score: float) -> bool:
    return score >= MIN_LINE_CONFIDENCE and sum(ch.isalnum() for ch in text) >= 2


def ocr_lines(engine, path: Path) -> str:
    """The confident lines RapidOCR reads in an image, one per line."""
    result = engine(str(path))
    lines = [
        text.strip()
        for text, score in zip(result.txts or (), result.scores or (), strict=False)
        if _confident(text, score)
    ]
    return "\n".join(lines)


def page_lines(engine, path: Path) -> str:
    """A scanned page's confident text in reading order, as JSON: a list of lines, each
    [text, left, top, width, height] with its box in percent of the page (for the page view).

    RapidOCR finds text in boxes, several to a line when a line has gaps; they are put back
    together line by line (see `reading_order`).
    """
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    result = engine(str(path))
    boxes = [] if result.boxes is None else result.boxes
    found = [(quad, text.strip()) for quad, text, score in
             zip(boxes, result.txts or (), result.scores or (), strict=False)
             if _confident(text, score)]
    return json.dumps([
        [text, round(100 * left / width, 2), round(100 * top / height, 2),
         round(100 * (right - left) / width, 2), round(100 * (bottom - top) / height, 2)]
        for text, (left, top, right, bottom) in reading_order(found)])


def reading_order(boxes: list[tuple[object, str]]
                  ) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Text boxes (4-corner quads clockwise from top left, with their text) as lines, top to
    bottom, each line's boxes left to right; with each line its (left, top, right, bottom).

    A box continues a line when its left edge's middle lies within half a line height of that
    line's middle line, extended along its slant: a slightly rotated scan tilts every line, so
    comparing the boxes' upright extents would merge neighbouring lines.
    """
    items = []
    for quad, text in boxes:
        corners = [(float(x), float(y)) for x, y in quad[:4]]
        (x0, y0), (x1, y1), _, (x3, y3) = corners
        slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
        extent = (min(x for x, _ in corners), min(y for _, y in corners),
                  max(x for x, _ in corners), max(y for _, y in corners))
        items.append((y0 + (y3 - y0) / 2, x0, slope, max(abs(y3 - y0), 1.0), text, extent))
    items.sort(key=lambda item: item[0])
    lines: list[list[tuple]] = []
    for item in items:
        y, x = item[0], item[1]
        for line in reversed(lines[-3:]):
            first = line[0]
            if abs(y - (first[0] + first[2] * (x - first[1]))) < first[3] / 2:
                line.append(item)
                break
        else:
            lines.append([item])
    out = []
    for line in lines:
        line.sort(key=lambda item: item[1])
        extents = [item[5] for item in line]
        out.append((" ".join(item[4] for item in line),
                    (min(e[0] for e in extents), min(e[1] for e in extents),
                     max(e[2] for e in extents), max(e[3] for e in extents))))
    return out


def _read(sha256: str, path: str, as_page: bool = False) -> tuple[str, str | None, str]:
    """(sha256, text, "") or, when this image fails, (sha256, None, why) instead of raising.

    `as_page`: the image is a whole scanned page, read in reading order (`page_lines`).
    """
    try:
        if no_room_for_text(Path(path)):
            return sha256, "", ""
        read = page_lines if as_page else ocr_lines
        return sha256, read(_engine, Path(path)), ""
    except Exception as error:  # one image's failure must not end the build
        return sha256, None, f"{type(error).__name__}: {error}"


class OcrCache:
    """OCR text by image sha256, in its own SQLite file shared by all generations."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS ocr (sha256 TEXT PRIMARY KEY, engine TEXT, text TEXT)")

    def get(self, hashes: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(hashes), 500):
            part = hashes[start:start + 500]
            marks = ",".join("?" * len(part))
            found.update(self.db.execute(
                f"SELECT sha256, text FROM ocr WHERE engine = ? AND sha256 IN ({marks})",
                [ENGINE, *part]).fetchall())
        return found

    def put(self, sha256: str, text: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO ocr VALUES (?, ?, ?)", (sha256, ENGINE, text))

    def close(self) -> None:
        self.db.close()


def _warn_on_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def read_figures(images: dict[str, Path], cache: OcrCache, progress: bool,
                 workers: int | None = None,
                 warn: Callable[[str], None] = _warn_on_stderr,
                 pages: frozenset[str] = frozenset()) -> Iterator[tuple[str, str]]:
    """OCR each (sha256 -> png path) image; yield (sha256, text) as they finish.

    The images whose key is in `pages` are rendered scanned pages, read in reading order.

    Every image is yielded once. One that cannot be read (a corrupt file, RapidOCR raising, its
    worker dying) is warned about and yielded with None, and not cached: the caller leaves it
    pending, so the next build tries it again. Images that cannot hold text are cached as empty
    without OCR. Raises OcrUnavailable when no worker can start.
    """
    from .progress import bar

    workers = max(1, min(workers or os.cpu_count() or 1, len(images) or 1))
    with bar("OCR", len(images), "images", progress) as shown:  # figures and scanned pages
        for sha, text, why in _read_all(images, workers, warn, pages):
            shown.update()
            if text is None:
                warn(f"could not OCR figure {images[sha]} ({why}); the next build tries again")
                yield sha, None
            else:
                cache.put(sha, text)
                yield sha, text


def _read_all(images: dict[str, Path], workers: int, warn: Callable[[str], None],
              pages: frozenset[str]) -> Iterator[tuple[str, str | None, str]]:
    """(sha256, text or None, why) for every image, however many workers die.

    A dead worker breaks its whole pool, and which image it held is unknown; but a pool hands
    out images in order, one per worker at a time (`_run_pool`), so it was one of the first
    `workers` unfinished. Those are read again one at a time, the rest by a fresh shared pool:
    the image that kills its worker is the only one lost.
    """
    queue = list(images.items())
    while queue:
        finished: set[str] = set()
        for result in _run_pool(dict(queue), workers, pages):
            finished.add(result[0])
            yield result
        left = [(sha, path) for sha, path in queue if sha not in finished]
        if left:
            warn(f"an OCR worker died; retrying the {len(left)} figures it left unread")
        suspects, queue = left[:workers], left[workers:]
        yield from _one_at_a_time(suspects, pages)


def _one_at_a_time(images: list[tuple[str, Path]], pages: frozenset[str]
                   ) -> Iterator[tuple[str, str | None, str]]:
    """Each image alone in a one-worker pool, so a worker's death names the image it held."""
    while images:
        with ocr_pool(1) as pool:
            while images:
                (sha, path), images = images[0], images[1:]
                try:
                    result = pool.submit(_read, sha, str(path), sha in pages).result()
                except BrokenProcessPool:
                    result = None
                yield result or (sha, None, "its OCR worker died")
                if result is None:
                    break


def _run_pool(todo: dict[str, Path], workers: int, pages: frozenset[str]
              ) -> Iterator[tuple[str, str | None, str]]:
    """Results of one pool over these images; those lost with a dead worker are not yielded.

    Each worker holds one image at a time (the next is sent when one finishes), so that on
    Ctrl-C, or when the caller stops reading, leaving the pool waits for those images only,
    not for a queue of them.
    """
    queue = iter(todo.items())
    with ocr_pool(min(workers, len(todo))) as pool:
        running: dict[Future, str] = {}
        broken = False
        while True:
            while not broken and len(running) < workers and (item := next(queue, None)):
                sha, path = item
                try:
                    running[pool.submit(_read, sha, str(path), sha in pages)] = sha
                except BrokenProcessPool:  # a worker died since the last image finished
                    broken = True
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                sha = running.pop(future)
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    broken = True
                else:
                    yield future.result() if error is None else (sha, None, repr(error))
