"""The web app under concurrent requests: a real uvicorn server in a thread, real HTTP clients.

Requests no longer take turns on one index, so these check what the turn-taking used to
guarantee: answers do not depend on what else is running, and a rebuild that swaps generations
while requests are in flight never fails one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import make_pdf, seeded_index

from notesearch import NoteIndex
from notesearch.web import _listen, create_app

TOPICS = {
    "sigmoid": "The sigmoid function squashes any real number between zero and one. ",
    "dropout": "Dropout switches off random units during training so none can be relied on. ",
    "momentum": "Momentum averages past gradients so descent rolls through small bumps. ",
    "attention": "Attention lets the decoder weigh every encoder state when it emits a word. ",
    "pooling": "Max pooling keeps the strongest activation of each window of a feature map. ",
    "beam": "Beam search keeps the few most likely partial sentences at every step. ",
}
QUERIES = ["what squashes a number between zero and one", "switching off random units",
           "averaging past gradients", "decoder weighs encoder states",
           "strongest activation in a window", "most likely partial sentences"]


def write_notes(folder: Path, extra: int = 0) -> Path:
    """One PDF per topic; `extra` adds that many more PDFs, so a build has something to do."""
    for n, (name, text) in enumerate(TOPICS.items(), start=1):
        make_pdf(folder / f"Course {1 + n % 5} - {name}.pdf", [text * 4, f"More on {name}."])
    for n in range(extra):
        make_pdf(folder / f"extra-{n}.pdf", [f"Appendix {n} lists the exercises of week {n}. " * 3])
    return folder


@pytest.fixture
def index(tmp_path, onnx_models) -> Path:
    notes = write_notes(tmp_path / "notes")
    NoteIndex.build(notes, seeded_index(onnx_models, tmp_path / "index"), ocr=False)
    return tmp_path / "index"


@pytest.fixture
def server(index) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread (one process)."""
    sock = _listen("127.0.0.1", 0)
    app_server = uvicorn.Server(uvicorn.Config(create_app(index), log_level="warning"))
    thread = threading.Thread(target=app_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not app_server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app_server.started, "the server did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    app_server.should_exit = True
    thread.join(10)


def search(client: httpx.Client, query: str) -> list[dict]:
    answer = client.get("/api/search", params={"q": query, "k": "3"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def hammer(url: str, queries: list[str], threads: int) -> list[list[dict]]:
    """Every query of `queries` from `threads` clients at once; answers in query order."""
    local = threading.local()

    def one(query: str) -> list[dict]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=60)
        return search(local.client, query)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, queries))


def test_concurrent_answers_equal_sequential_ones(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        alone = {q: search(client, q) for q in QUERIES}
    queries = QUERIES * 8
    together = hammer(server, queries, threads=8)
    assert together == [alone[q] for q in queries]
    assert all(alone[q] for q in QUERIES)
    assert [alone[q][0]["file"].split(" - ")[1][:-4] for q in QUERIES] == list(TOPICS)


def test_rebuilds_during_load_never_fail_a_request(server, index, tmp_path):
    notes = tmp_path / "notes"
    with httpx.Client(base_url=server, timeout=60) as client:
        before = search(client, QUERIES[0])
    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def client_loop(offset: int) -> None:
        nonlocal answered
        with httpx.Client(base_url=server, timeout=60) as client:
            n = offset
            while not stop.is_set():
                answer = client.get("/api/search", params={"q": QUERIES[n % len(QUERIES)]})
                if answer.status_code != 200 or not answer.json():
                    failures.append(f"{answer.status_code} {answer.text[:200]}")
                answered += 1
                n += 1

    clients = [threading.Thread(target=client_loop, args=(n,)) for n in range(6)]
    for thread in clients:
        thread.start()
    try:
        generations = []
        for extra in (1, 2, 3):  # three swaps: the first generation's files are deleted
            write_notes(notes, extra=extra)
            report = NoteIndex.build(notes, index, ocr=False)
            assert report.added == [f"extra-{extra - 1}.pdf"]
            generations.append((index / "CURRENT").read_text().strip())
            time.sleep(0.3)
    finally:
        stop.set()
        for thread in clients:
            thread.join(60)
    assert not failures, failures[:3]
    assert answered > 20 and len(set(generations)) == 3
    with httpx.Client(base_url=server, timeout=60) as client:
        after = search(client, QUERIES[0])
        status = client.get("/api/status").json()
    assert after[0]["file"] == before[0]["file"]
    assert len(status["documents"]) == len(TOPICS) + 3  # the server reads the newest generation
