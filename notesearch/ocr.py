"""Text inside figures, read by RapidOCR (ONNX models shipped in the wheel, runs offline).

OCR is the slow part of a build (about a second a slide), so it runs on every core, each worker
loading the models once, and every result is cached by image hash the moment it is known: a
build that is interrupted, repeated, or meets the same slide in another PDF never reads an image
twice.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

# Lines the recogniser is less sure of are mostly handwriting and arrows read as letters.
MIN_LINE_CONFIDENCE = 0.7
ENGINE = "rapidocr-3"

_engine = None


def _worker_init() -> None:
    global _engine
    from rapidocr import RapidOCR

    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    _engine = RapidOCR(params={
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    })


def _read(sha256: str, path: str) -> tuple[str, str]:
    result = _engine(path)
    lines = [
        text.strip()
        for text, score in zip(result.txts or (), result.scores or (), strict=False)
        if score >= MIN_LINE_CONFIDENCE and sum(ch.isalnum() for ch in text) >= 2
    ]
    return sha256, "\n".join(lines)


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


def read_figures(images: dict[str, Path], cache: OcrCache, progress: bool,
                 workers: int | None = None) -> Iterator[tuple[str, str]]:
    """OCR each (sha256 -> png path) image not yet cached; yield (sha256, text) as they finish."""
    from tqdm import tqdm

    if not images:
        return
    workers = max(1, min(workers or os.cpu_count() or 1, len(images)))
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                             initializer=_worker_init) as pool, \
            tqdm(total=len(images), desc="OCR", unit="figure", disable=not progress,
                 file=sys.stderr, leave=False) as bar:
        futures = [pool.submit(_read, sha, str(path)) for sha, path in images.items()]
        try:
            for future in as_completed(futures):
                sha256, text = future.result()
                cache.put(sha256, text)
                bar.update()
                yield sha256, text
        except BaseException:
            for future in futures:
                future.cancel()
            raise
