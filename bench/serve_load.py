"""How many searches a second `notesearch serve` answers, and how fast, under concurrent clients.

    python bench/serve_load.py --index /work/idx/web                     # this checkout only
    python bench/serve_load.py --index /work/idx/web --baseline /work/wt-web   # vs another one

Starts `python -m notesearch serve` from each checkout (loopback, a free port), warms it, then
for each client count N sends the same fixed number of `/api/search` requests (the dev
questions, in turn) from N threads, each with its own keep-alive connection, and prints
requests/s, p50 and p95. With --baseline both servers run in the same run, alternating by
round, and the table ends with new/baseline ratios. Results are checked: every answer is 200
with hits. Every request has a timeout, so a stuck server cannot hang the bench.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parents[1]
DEV = HERE.parent / "shared" / "eval" / "dev.jsonl"
TIMEOUT = 60.0


def start_server(checkout: Path, index: Path) -> tuple[subprocess.Popen, str]:
    """`python -m notesearch serve` run from `checkout` on a free port; returns once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "notesearch", "serve", "--index", str(index), "--port", str(port)],
        cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/status", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    stop_server(process)
    raise SystemExit(f"the server from {checkout} did not start")


def stop_server(process: subprocess.Popen) -> None:
    """Ctrl-C, then SIGKILL to its process group if it does not stop."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def load(url: str, queries: list[str], clients: int, requests: int) -> tuple[float, list[float]]:
    """`requests` searches from `clients` threads; (requests per second, seconds of each)."""
    todo = iter(range(requests))
    guard = threading.Lock()
    times: list[float] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
            while True:
                with guard:
                    n = next(todo, None)
                if n is None:
                    return
                started = time.perf_counter()
                answer = http.get("/api/search", params={"q": queries[n % len(queries)]})
                elapsed = time.perf_counter() - started
                if answer.status_code != 200 or not answer.json():
                    raise RuntimeError(f"{answer.status_code}: {answer.text[:200]}")
                with guard:
                    times.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for done in [pool.submit(client) for _ in range(clients)]:
            done.result()
    return requests / (time.perf_counter() - started), times


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, help="another checkout to run the same load on")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=240, help="per client count and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    queries = [json.loads(line)["query"] for line in DEV.read_text().splitlines() if line]
    checkouts = {"new": HERE} | ({"baseline": args.baseline} if args.baseline else {})
    servers = {name: start_server(path, args.index) for name, path in checkouts.items()}
    results: dict[tuple[str, int], list[tuple[float, list[float]]]] = {}
    try:
        for url in (url for _, url in servers.values()):
            load(url, queries, 2, len(queries))  # warm: every question once
        for _ in range(args.rounds):
            for clients in args.clients:
                for name, (_, url) in servers.items():
                    results.setdefault((name, clients), []).append(
                        load(url, queries, clients, args.requests))
    finally:
        for process, _ in servers.values():
            stop_server(process)
    print(f"{'server':<9} {'N':>3} {'req/s med (min-max)':>22} {'p50 ms':>7} {'p95 ms':>7}")
    summary: dict[tuple[str, int], tuple[float, float, float]] = {}
    for (name, clients), runs in results.items():
        rates = [rate for rate, _ in runs]
        times = [t * 1000 for _, ts in runs for t in ts]
        summary[name, clients] = (statistics.median(rates), percentile(times, 50),
                                  percentile(times, 95))
        rate, p50, p95 = summary[name, clients]
        print(f"{name:<9} {clients:>3} {rate:>8.1f} ({min(rates):.1f}-{max(rates):.1f})"
              f"{'':>3} {p50:>7.1f} {p95:>7.1f}")
    if args.baseline:
        for clients in args.clients:
            new, old = summary["new", clients], summary["baseline", clients]
            print(f"new/baseline N={clients}: req/s x{new[0] / old[0]:.2f}, "
                  f"p50 x{new[1] / old[1]:.2f}, p95 x{new[2] / old[2]:.2f}")


if __name__ == "__main__":
    main()
