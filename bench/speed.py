"""Speed: notesearch beside a txtai baseline (hybrid, same model, same page windows), one run.

    python bench/speed.py [--notes ../shared/notes] [--runs 7] [--build-runs 5] [--ocr]
                          [--before CHECKOUT] [--only cold help warm build] [--workdir DIR]

Every figure is min / median / max over --runs (or --build-runs) whole measurements, notesearch
and txtai alternating, and the ratio txtai / notesearch of the medians is what to read (this
machine is shared and noisy; the load average is printed with the table, and every whole-process
figure has a second row with its CPU time, user + system, which load distorts far less):
- cold CLI search: one whole process, `notesearch search QUERY` against `python
  bench/txtai_baseline.py search INDEX QUERY` (loads the saved txtai index, searches, prints);
- `notesearch --help`: beside a bare interpreter start (txtai has no command line; the floor
  is the honest reference);
- warm API search p50 and p95 over the dev questions, k = 10: `NoteIndex.search` against
  `Embeddings.search`, both loaded once in this process; one run = every dev question once;
- first build, text phase (`index --no-ocr` into a fresh folder, the model export already in
  the user cache) against txtai indexing the same passages; with --ocr, the full build with
  OCR too (notesearch only: the baseline reads no figures);
- with --before CHECKOUT, cold search and --help of another checkout (`python -m notesearch`
  run from its folder) in the same run, for before/after ratios.
notesearch runs as `python -m notesearch` from this checkout (whatever is installed).
txtai comes with the optional extra: pip install -e '.[bench]'.
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
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINE = [sys.executable, str(HERE / "txtai_baseline.py")]
# `python -m notesearch` with this checkout first on the path, in the children and here, so a
# copy of the repository benchmarks its own code whatever is installed in the environment.
NOTESEARCH = [sys.executable, "-m", "notesearch"]
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PARTS = ["cold", "help", "warm", "build"]


class Run(NamedTuple):
    wall: float  # seconds
    peak: int  # MiB
    cpu: float  # user + system seconds: what a loaded machine distorts least


def run_process(cmd: list[str], cwd: Path | None = None) -> Run:
    """Wall seconds, peak RSS and CPU seconds of one child process, from wait4's accounting."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=cwd, env=CHILD_ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status:
        raise SystemExit(f"{cmd} failed with status {status}:\n{errors.decode(errors='replace')}")
    return Run(time.perf_counter() - started, usage.ru_maxrss // 1024,
               usage.ru_utime + usage.ru_stime)


def spread(values: list[float], unit: str = "ms") -> str:
    """min / median / max, in ms or s."""
    scale, digits = (1000, 0) if unit == "ms" else (1, 1)
    if unit == "ms" and max(values) < 0.1:
        digits = 1
    return " / ".join(f"{v * scale:.{digits}f}" for v in
                      (min(values), statistics.median(values), max(values))) + f" {unit}"


class Table:
    """Rows of `measure | notesearch | baseline | baseline / notesearch`."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add_runs(self, measure: str, ours: list[Run], theirs: list[Run] | None,
                 unit: str = "ms", baseline_name: str = "") -> None:
        """A row of wall times and a row of CPU times."""
        self.add(measure, [r.wall for r in ours], theirs and [r.wall for r in theirs], unit,
                 baseline_name)
        self.add("  the same, CPU (user+sys)", [r.cpu for r in ours],
                 theirs and [r.cpu for r in theirs], unit, baseline_name)

    def add(self, measure: str, ours: list[float], theirs: list[float] | None,
            unit: str = "ms", baseline_name: str = "") -> None:
        ratio = statistics.median(theirs) / statistics.median(ours) if theirs else 0.0
        ratio_cell = f"{ratio:.{1 if ratio >= 1 else 2}f}x" if theirs else ""
        cell = spread(theirs, unit) if theirs else "n/a"
        self.rows.append((measure, spread(ours, unit),
                          f"{cell} ({baseline_name})" if baseline_name else cell, ratio_cell))

    def note(self, measure: str, value: str) -> None:
        self.rows.append((measure, value, "", ""))

    def print(self) -> None:
        print("| measure | notesearch min / median / max | txtai baseline min / median / max "
              "| baseline / notesearch (medians) |")
        print("|---|---|---|---|")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")


def alternate(runs: int, first: Callable[[int], Run], second: Callable[[int], Run]
              ) -> tuple[list[Run], list[Run]]:
    """`runs` measurements of each, interleaved so that load drifts hit both alike."""
    a, b = [], []
    for n in range(runs):
        pair = (first, second) if n % 2 == 0 else (second, first)
        results = {fn: fn(n) for fn in pair}
        a.append(results[first])
        b.append(results[second])
    return a, b


def warm_search(search: Callable[[str], object], queries: list[str], runs: int
                ) -> tuple[list[float], list[float]]:
    """Per-run p50 and p95 of one search of each query (seconds)."""
    search(queries[0])
    p50s, p95s = [], []
    for _ in range(runs):
        samples = []
        for query in queries:
            started = time.perf_counter()
            search(query)
            samples.append(time.perf_counter() - started)
        samples.sort()
        p50s.append(statistics.median(samples))
        p95s.append(samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))])
    return p50s, p95s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=Path, default=ROOT.parent / "shared" / "notes")
    parser.add_argument("--queries", type=Path,
                        default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    parser.add_argument("--runs", type=int, default=7, help="runs of each search measure")
    parser.add_argument("--build-runs", type=int, default=5, help="runs of each build")
    parser.add_argument("--ocr", action="store_true", help="also time full builds with OCR")
    parser.add_argument("--before", type=Path, help="another checkout to compare with")
    parser.add_argument("--workdir", type=Path, help="keep the indexes here (default: temp)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS,
                        help="measure only these (default: all)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="notesearch-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    queries = [json.loads(line)["query"] for line in args.queries.read_text().splitlines()
               if line.strip()]
    table = Table()

    # The indexes searched below; the first notesearch build also makes the model export if
    # this machine has none yet, so the timed builds that follow all find it.
    index, txtai_index = work / "notesearch", work / "txtai"
    if not (index / "CURRENT").exists():
        run_process([*NOTESEARCH, "index", str(args.notes), "--index", str(index), "--no-ocr",
                     "-q"])
    if not (txtai_index / "config.json").exists():
        run_process([*BASELINE, "build", str(args.notes), str(txtai_index)])

    def ours_cold(n: int) -> Run:
        return run_process([*NOTESEARCH, "search", queries[n % len(queries)],
                            "--index", str(index)])

    def txtai_cold(n: int) -> Run:
        return run_process([*BASELINE, "search", str(txtai_index), queries[n % len(queries)]])

    if "cold" in args.only:
        ours, theirs = alternate(args.runs, ours_cold, txtai_cold)
        table.add_runs("cold CLI search, whole process", ours, theirs)
        peaks = [run_process([*NOTESEARCH, "search", queries[0], "--index", str(index)])[1]
                 for _ in range(3)]
        table.note("cold CLI search, peak RSS", f"{statistics.median(peaks)} MiB")
    if "help" in args.only:
        ours, floor = alternate(
            args.runs, lambda n: run_process([*NOTESEARCH, "--help"]),
            lambda n: run_process([sys.executable, "-c", "pass"]))
        table.add_runs("`notesearch --help`", ours, floor,
                       baseline_name="bare `python -c pass`")

    if args.before and {"cold", "help"} & set(args.only):
        before = [sys.executable, "-m", "notesearch"]
        if "cold" in args.only:
            # Its own index of the same notes: the other checkout may read another format.
            old_index = work / "before-index"
            if not (old_index / "CURRENT").exists():
                run_process([*before, "index", str(args.notes), "--index", str(old_index),
                             "--no-ocr", "-q"], cwd=args.before)
            ours, old = alternate(
                args.runs, ours_cold, lambda n: run_process(
                    [*before, "search", queries[n % len(queries)], "--index", str(old_index)],
                    cwd=args.before))
            table.add_runs("cold CLI search vs --before", ours, old, baseline_name="before")
        if "help" in args.only:
            ours, old = alternate(
                args.runs, lambda n: run_process([*NOTESEARCH, "--help"]),
                lambda n: run_process([*before, "--help"], cwd=args.before))
            table.add_runs("`--help` vs --before", ours, old, baseline_name="before")

    sys.path[:0] = [str(ROOT), str(HERE)]
    import txtai_baseline

    from notesearch import NoteIndex

    if "warm" in args.only:
        with NoteIndex.open(index) as notes:
            ours_p50, ours_p95 = warm_search(lambda q: notes.search(q, k=10), queries,
                                             args.runs)
        embeddings = txtai_baseline.load(txtai_index)
        theirs_p50, theirs_p95 = warm_search(
            lambda q: txtai_baseline.search(embeddings, q, k=10), queries, args.runs)
        embeddings.close()
        table.add(f"warm API search p50 ({len(queries)} dev questions, k=10)", ours_p50,
                  theirs_p50)
        table.add("warm API search p95", ours_p95, theirs_p95)

    def ours_build(n: int) -> Run:
        target = work / f"build-{n}"
        run = run_process([*NOTESEARCH, "index", str(args.notes), "--index", str(target),
                           "--no-ocr", "-q"])
        shutil.rmtree(target)
        return run

    def txtai_build(n: int) -> Run:
        target = work / f"txtai-build-{n}"
        run = run_process([*BASELINE, "build", str(args.notes), str(target)])
        shutil.rmtree(target)
        return run

    if "build" in args.only:
        ours, theirs = alternate(args.build_runs, ours_build, txtai_build)
        table.add_runs("first build, text phase (export cached)", ours, theirs, unit="s")
        ours = [run_process([*NOTESEARCH, "index", str(args.notes), "--index", str(index),
                             "-q", "--no-ocr"]) for _ in range(args.runs)]
        table.add_runs("incremental build, nothing changed", ours, None)

    if args.ocr:
        def full_build(n: int) -> Run:
            target = work / f"ocr-build-{n}"
            run = run_process([*NOTESEARCH, "index", str(args.notes), "--index", str(target),
                               "-q"])
            shutil.rmtree(target)
            return run

        table.add_runs("first full build with OCR (export cached)",
                       [full_build(n) for n in range(args.build_runs)], None, unit="s")

    with NoteIndex.open(index) as notes:
        table.note("index size on disk (live generation, no OCR)",
                   f"{notes.status()['size_bytes'] / 1e6:.1f} MB")
    table.print()
    print(f"load average at the end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f} ({os.cpu_count()} cores)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
