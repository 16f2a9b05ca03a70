"""OCR cost per figure: single-threaded baseline vs the old worker pool vs `read_figures`.

    python bench/ocr.py [--notes ../shared/notes] [--limit N] [--workers 2]

Extracts the figures of the notes (as a build does, into a temp folder), then OCRs the same
images three ways and prints CPU-seconds per figure (this process's CPU for the baseline, the
workers' CPU from getrusage(RUSAGE_CHILDREN) for the pools), wall seconds, figures skipped as
unable to hold text, the ratio to the baseline, and how many texts equal the baseline's:
- baseline: one single-threaded RapidOCR engine in this process, one call per figure;
- old pool: the worker initializer before issue 14 (onnxruntime set to one thread, but OpenCV,
  OpenBLAS and OpenMP left at their defaults);
- read_figures: the pool a build uses now.
CPU-seconds per figure is the figure to read: other work on the machine moves wall time.
`--limit N` takes N figures evenly spread over the notes, for a quick check.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_old_engine = None


def _old_worker_init() -> None:
    """The worker initializer of notesearch/ocr.py before issue 14, as it was."""
    import logging

    from rapidocr import RapidOCR

    global _old_engine
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    _old_engine = RapidOCR(params={
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    })


def _old_read(sha256: str, path: str) -> tuple[str, str]:
    from notesearch.ocr import ocr_lines

    return sha256, ocr_lines(_old_engine, Path(path))


def extract(notes: Path, folder: Path) -> dict[str, Path]:
    """sha256 -> PNG of every figure a build keeps from these notes."""
    from notesearch.extract import extract_figures, iter_pages, open_pdf
    from notesearch.records import FigureCounts

    seen: set[str] = set()
    images: dict[str, Path] = {}
    for pdf in sorted(notes.glob("*.pdf")):
        reader = open_pdf(pdf)
        for page, pdf_page in iter_pages(reader, pdf, print):
            if pdf_page is None:
                continue
            for figure in extract_figures(pdf_page, page.number, pdf, folder / "figures", seen,
                                          FigureCounts(), print):
                images[figure.sha256] = folder / figure.path
    return images


def spread(images: dict[str, Path], limit: int | None) -> dict[str, Path]:
    if not limit or limit >= len(images):
        return images
    items = list(images.items())
    return dict(items[round(i * len(items) / limit)] for i in range(limit))


@contextmanager
def environ(values: dict[str, str | None]) -> Iterator[None]:
    """Run with these environment values (None: unset), inherited by spawned workers."""
    saved = {name: os.environ.get(name) for name in values}
    _set(values)
    try:
        yield
    finally:
        _set(saved)


def _set(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def baseline(images: dict[str, Path]) -> tuple[dict[str, str], float, float]:
    """Texts, wall s and CPU s of one single-threaded engine in this process."""
    from notesearch.ocr import ocr_lines, single_thread_engine

    wall, cpu = time.perf_counter(), time.process_time()
    engine = single_thread_engine()
    texts = {sha: ocr_lines(engine, path) for sha, path in images.items()}
    return texts, time.perf_counter() - wall, time.process_time() - cpu


def old_pool(images: dict[str, Path], workers: int) -> dict[str, str]:
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                             initializer=_old_worker_init) as pool:
        futures = [pool.submit(_old_read, sha, str(path)) for sha, path in images.items()]
        return dict(future.result() for future in as_completed(futures))


def new_pool(images: dict[str, Path], workers: int) -> dict[str, str]:
    from notesearch.ocr import OcrCache, read_figures

    with tempfile.TemporaryDirectory() as folder:
        cache = OcrCache(Path(folder) / "ocr-cache.db")
        texts = dict(read_figures(images, cache, progress=False, workers=workers))
        cache.close()
    return texts


def measured(run: Callable[[], dict[str, str]]) -> tuple[dict[str, str], float, float]:
    wall, cpu = time.perf_counter(), children_cpu()
    texts = run()
    return texts, time.perf_counter() - wall, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=Path, default=ROOT.parent / "shared" / "notes")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    from notesearch.ocr import THREAD_ENV

    # This process computes the baseline on one thread; the pools' workers inherit the
    # environment as it was, so the old pool runs with the thread settings it really had.
    original = {name: os.environ.get(name) for name in THREAD_ENV}
    _set({name: "1" for name in THREAD_ENV})

    with tempfile.TemporaryDirectory() as folder:
        images = spread(extract(args.notes, Path(folder)), args.limit)
        from notesearch.ocr import no_room_for_text

        skipped = sum(no_room_for_text(path) is not None for path in images.values())
        print(f"{len(images)} figures from {args.notes}, {args.workers} workers, "
              f"load average {os.getloadavg()[0]:.2f} at start", file=sys.stderr)
        runs = {"baseline (1 thread, in-process)": (*baseline(images), 0)}
        with environ(original):
            runs["old pool (before issue 14)"] = (*measured(
                lambda: old_pool(images, args.workers)), 0)
            runs["read_figures (now)"] = (*measured(
                lambda: new_pool(images, args.workers)), skipped)
    print(f"load average {os.getloadavg()[0]:.2f} at end", file=sys.stderr)

    reference, _, base_cpu, _ = runs["baseline (1 thread, in-process)"]
    n = len(images)
    print(f"| {'run':<32} | wall s | CPU s | CPU s/figure | x baseline | skipped "
          "| texts = baseline |")
    print(f"|{'-' * 34}|-------:|------:|-------------:|-----------:|--------:|-----------------:|")
    for name, (texts, wall, cpu, skips) in runs.items():
        same = sum(texts.get(sha) == text for sha, text in reference.items())
        print(f"| {name:<32} | {wall:6.1f} | {cpu:5.0f} | {cpu / n:12.2f} | "
              f"{cpu / base_cpu:10.2f} | {skips:7d} | {same:>7d} of {n:<5d} |")
    for name, (texts, *_rest) in runs.items():
        for sha, text in reference.items():
            if texts.get(sha) != text:
                print(f"{name}: {sha[:12]} differs:\n  baseline {text!r}\n  this     "
                      f"{texts.get(sha)!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
