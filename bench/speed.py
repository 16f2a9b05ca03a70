"""Speed and memory: build, incremental no-change build, search latency warm and cold.

    python bench/speed.py [--notes ../shared/notes] [--runs 10]

Each figure is set beside a simple baseline measured in the same run, and the ratio is what to
read (this machine is noisy):
- cold CLI search with the ONNX query path vs the same index with it removed (PyTorch +
  sentence-transformers, i.e. before the fast path);
- passage embedding at build time with ONNX Runtime vs sentence-transformers;
- warm in-process search vs a plain BM25-only (lexical) search of the same index.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["why initialise the weights randomly", "Bayes error", "dropout keep_prob",
           "exponentially weighted averages", "transfer learning when task B has little data",
           "beam search", "1x1 convolution", "orthogonalization", "GRU update gate",
           "mini-batch size"]


def peak_rss_of(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one child process, from wait4's own accounting."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status:
        raise SystemExit(f"{cmd} failed with status {status}")
    return time.perf_counter() - started, usage.ru_maxrss // 1024


def timings(cmd: list[str], runs: int) -> list[float]:
    return [peak_rss_of(cmd)[0] for _ in range(runs)]


def describe(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:.0f} ms, min {min(values) * 1000:.0f}, "
            f"max {max(values) * 1000:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=Path, default=ROOT.parent / "shared" / "notes")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="notesearch-speed-"))
    cli = [sys.executable, "-m", "notesearch"]
    rows: list[tuple[str, str]] = []

    index = work / "index"
    wall, peak = peak_rss_of([*cli, "index", str(args.notes), "--index", str(index), "--no-ocr",
                              "-q"])
    rows.append(("full build, no OCR (fresh, incl. ONNX export)", f"{wall:.1f} s, peak {peak} MiB"))
    wall, peak = peak_rss_of([*cli, "index", str(args.notes), "--index", str(index), "-q"])
    rows.append(("OCR phase on top (all figures, 2 workers)", f"{wall:.1f} s, peak {peak} MiB"))
    wall, peak = peak_rss_of([*cli, "index", str(args.notes), "--index", str(index), "-q",
                              "--rebuild"])
    rows.append(("full rebuild with OCR cached", f"{wall:.1f} s, peak {peak} MiB"))
    wall, peak = peak_rss_of([*cli, "index", str(args.notes), "--index", str(index), "-q"])
    rows.append(("incremental, nothing changed", f"{wall:.2f} s, peak {peak} MiB"))

    help_times = timings([*cli, "--help"], args.runs)
    rows.append(("cold `notesearch --help`", describe(help_times)))
    fast = timings([*cli, "search", QUERIES[0], "--index", str(index)], args.runs)
    slow_index = work / "index-torch"
    shutil.copytree(index, slow_index, symlinks=True)
    shutil.rmtree(slow_index / "models")
    slow = timings([*cli, "search", QUERIES[0], "--index", str(slow_index)], args.runs)
    rows.append(("cold CLI search, ONNX fast path", describe(fast)))
    rows.append(("cold CLI search, PyTorch path (before)", describe(slow)))
    rows.append(("  ratio before/after (median)",
                 f"{statistics.median(slow) / statistics.median(fast):.1f}x"))

    from notesearch import NoteIndex

    with NoteIndex.open(index) as notes:
        for mode in ("hybrid", "lexical"):
            notes.search("warm up", mode=mode)
            samples = []
            for _ in range(5):
                for query in QUERIES:
                    started = time.perf_counter()
                    notes.search(query, k=5, mode=mode)
                    samples.append(time.perf_counter() - started)
            samples.sort()
            rows.append((f"warm in-process search, {mode}",
                         f"p50 {statistics.median(samples) * 1000:.1f} ms, "
                         f"p95 {samples[int(len(samples) * 0.95)] * 1000:.1f} ms"))
        texts = [r[0] for r in notes.db.execute("SELECT text FROM chunks WHERE kind = 'text'")]
        status = notes.status()
    rows.append(("index size on disk (live generation)", f"{status['size_bytes'] / 1e6:.1f} MB"))

    from notesearch.embed import TorchEmbedder
    from notesearch.index import build_embedder
    from notesearch.layout import IndexDir

    onnx = build_embedder("all-MiniLM-L6-v2", IndexDir(index))
    torch_embedder = TorchEmbedder()
    torch_embedder.encode(texts[:8])
    onnx.encode(texts[:8])
    started = time.perf_counter()
    torch_embedder.encode(texts)
    torch_s = time.perf_counter() - started
    started = time.perf_counter()
    onnx.encode(texts)
    onnx_s = time.perf_counter() - started
    rows.append((f"embed {len(texts)} passages, sentence-transformers", f"{torch_s:.1f} s"))
    rows.append((f"embed {len(texts)} passages, ONNX Runtime", f"{onnx_s:.1f} s"))
    rows.append(("  ratio", f"{torch_s / onnx_s:.2f}x"))

    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(json.dumps({"workdir": str(work)}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
