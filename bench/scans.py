"""A scanned course against its typed PDF: R@1 / R@5 / MRR per mode, typed vs scanned.

    python bench/scans.py [--workdir DIR] [--before CHECKOUT]

Makes an image-only scanned copy of the whole "Structuring your Machine Learning Project" notes
(every page rendered, greyed, blurred, rotated ~1 degree, at 110 dpi: tests/scanned.py), builds
one index of the typed PDF and one of the scanned copy (OCR on, as by default), and scores the
questions of ../shared/eval/dev.jsonl and bench/data/heldout*.jsonl that have a relevant page in
that course (their other files' pages dropped; the scanned copy's name substituted). With
--before, the same is measured with another checkout's notesearch in the same run, in a child
process, into its own indexes. --workdir keeps the scanned copy and indexes (and so the OCR
caches) between runs; by default a temporary folder is used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
COURSE = "Structuring your Machine Learning Project.pdf"
SCANNED = "Structuring (scanned).pdf"
QUERY_FILES = [SHARED / "eval" / "dev.jsonl",
               *sorted((ROOT / "bench" / "data").glob("heldout*.jsonl"))]
MODES = ("hybrid", "dense", "lexical")
METRICS = ("R@1", "R@5", "MRR")


def questions(file_name: str) -> list[dict]:
    """The labelled questions about the course, relevance limited to it, under `file_name`."""
    from notesearch.evaluate import load_queries

    out = []
    for path in QUERY_FILES:
        for query in load_queries(path):
            pages = {(file_name, page) for name, page in query["relevant"] if name == COURSE}
            if pages:
                out.append({**query, "relevant": pages})
    return out


def measure(notes: Path, index: Path, file_name: str) -> dict:
    """Build (or bring up to date) the index of `notes`, then score every mode."""
    from notesearch import NoteIndex
    from notesearch.evaluate import _mean, score_ranking

    started = time.perf_counter()
    report = NoteIndex.build(notes, index, ocr=True)
    built = time.perf_counter() - started
    asked = questions(file_name)
    table = {}
    with NoteIndex.open(index) as opened:
        kinds = dict(opened.db.execute("SELECT kind, count(*) FROM chunks GROUP BY kind"))
        for mode in MODES:
            table[mode] = _mean([score_ranking(opened.search(q["query"], k=10, mode=mode),
                                               q["relevant"], 10) for q in asked])
    return {"table": table, "questions": len(asked), "passages": kinds,
            "build_s": round(built, 1), "ocr_read": report.figures_ocr_read
            + getattr(report, "scans_ocr_read", 0)}


def both(workdir: Path, label: str) -> dict:
    """Typed and scanned measurements into `workdir/label-*` indexes (this process's code)."""
    typed = measure(workdir / "typed", workdir / f"{label}-typed-index", COURSE)
    scanned = measure(workdir / "scanned", workdir / f"{label}-scanned-index", SCANNED)
    return {"typed": typed, "scanned": scanned}


def prepare(workdir: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from scanned import scanned_copy

    source = SHARED / "notes" / COURSE
    (workdir / "typed").mkdir(parents=True, exist_ok=True)
    if not (workdir / "typed" / COURSE).exists():
        shutil.copy(source, workdir / "typed" / COURSE)
    if not (workdir / "scanned" / SCANNED).exists():
        scanned_copy(source, workdir / "scanned" / SCANNED)


def print_table(runs: dict[str, dict]) -> None:
    first = next(iter(runs.values()))
    print(f"\n{first['typed']['questions']} questions; R@1 / R@5 / MRR (k=10)")
    header = " | ".join(f"{label}: typed PDF | {label}: scanned copy" for label in runs)
    print(f"| mode | {header} |")
    print("|---|" + "---|---|" * len(runs))
    for mode in MODES:
        cells = []
        for run in runs.values():
            for side in ("typed", "scanned"):
                row = run[side]["table"][mode]
                cells.append(" / ".join(f"{row[m]:.2f}" for m in METRICS))
        print(f"| {mode} | {' | '.join(cells)} |")
    for label, run in runs.items():
        typed, scanned = (run[side]["table"]["hybrid"] for side in ("typed", "scanned"))
        print(f"{label}, hybrid, scanned minus typed: R@5 {scanned['R@5'] - typed['R@5']:+.3f}, "
              f"MRR {scanned['MRR'] - typed['MRR']:+.3f} (target: within 0.03)")
    for label, run in runs.items():
        for side in ("typed", "scanned"):
            info = run[side]
            print(f"{label} {side}: passages {info['passages']}, OCR read {info['ocr_read']}, "
                  f"build {info['build_s']} s (loaded machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--before", type=Path, help="another checkout to compare with")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # label: measure, print JSON
    args = parser.parse_args()
    if args.child:
        print(json.dumps(both(args.workdir, args.child)))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="scans-bench-"))
    prepare(workdir)
    runs = {}
    if args.before:
        child = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--workdir", str(workdir),
             "--child", "before"], cwd=args.before, check=True, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(args.before.resolve())})
        runs["before"] = json.loads(child.stdout.strip().splitlines()[-1])
    runs["now"] = both(workdir, "now")
    print_table(runs)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
