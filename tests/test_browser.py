"""`notesearch serve` as a user meets it: a real server process and headless Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import make_pdf, seeded_index
from test_web import C1, make_notes

from notesearch import NoteIndex

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--window-size=1280,1000"]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    banner: str


def free_port() -> int:
    """A port nothing listens on now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(index: Path, timeout: float = 60.0, workers: int | None = None) -> Server:
    """`notesearch serve` in its own process, returned once it answers HTTP; with `workers`,
    `web.serve` run with that many worker processes instead (the CLI uses one per core)."""
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "notesearch", "serve", "--index", str(index), "--port",
               str(port)]
    if workers is not None:
        command = [sys.executable, "-c", "import sys; from notesearch.web import serve; "
                   f"serve(sys.argv[1], port={port}, workers={workers})", str(index)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {process.stderr.read()}")
            try:
                if httpx.get(url + "api/status", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer in time")
            time.sleep(0.1)
        return Server(url, process, process.stdout.readline())
    except BaseException:
        stop_server(process)
        raise


def stop_server(process: subprocess.Popen) -> None:
    """Ctrl-C the server, then kill its process group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    for stream in (process.stdout, process.stderr):
        if stream:
            stream.close()


VAULT_NOTE = """\
# Week 2

## Vanishing gradients

Gradients shrink layer after layer, so the *early layers* of a very deep plain network learn
almost nothing: this is the okapi effect our tutor drew on the board.

![the tutor's slide](../slide.png)

<script>document.title = 'pwned'</script>
[do not follow](javascript:document.title='pwned')
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, onnx_models) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("browser")
    notes = make_notes(root)
    shutil.copy(root / "slide.png", notes / "slide.png")
    (notes / "vault").mkdir()
    (notes / "vault" / "week 2.md").write_text(VAULT_NOTE)
    NoteIndex.build(notes, seeded_index(onnx_models, root / "index"), ocr=False)
    running = start_server(root / "index")
    try:
        yield running
    finally:
        stop_server(running.process)


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium with a fresh profile, quit after the test whatever happens."""
    driver_path = shutil.which("chromedriver")
    if not CHROMIUM.exists() or driver_path is None:
        missing = ("needs Debian's chromium and chromium-driver "
                   "(apt-get install -y chromium chromium-driver)")
        if os.environ.get("CI") == "true":  # CI must not turn green by skipping a whole suite
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def search(driver, url: str, query: str) -> None:
    """Type `query` into the search box, submit, and wait for the results list."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    box = driver.find_element(By.NAME, "q")
    box.clear()
    box.send_keys(query, Keys.ENTER)
    WebDriverWait(driver, 30).until(
        shown.presence_of_element_located((By.CSS_SELECTOR, "#results li.hit")))


def page_image_loaded(driver) -> bool:
    """Whether the page view's image has arrived and decoded (not merely its <img> tag)."""
    return driver.execute_script(
        "const i = document.getElementById('page-image');"
        "return Boolean(i && i.complete && i.naturalWidth > 0);")


# ----------------------------------------------------------------------------- tests

def test_serve_prints_its_local_url(server):
    assert server.url in server.banner


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_server_as_asked(tmp_path, onnx_models, workers):
    """Ctrl-C is how `serve` is stopped: exit 0, no traceback or "Interrupted" line. With one
    worker (a one-core machine), uvicorn raises the signal again after its clean shutdown."""
    make_pdf(tmp_path / "notes" / "a.pdf", ["Dropout drops units at random while training."])
    NoteIndex.build(tmp_path / "notes", seeded_index(onnx_models, tmp_path / "index"), ocr=False)
    running = start_server(tmp_path / "index", workers=workers)
    os.killpg(running.process.pid, signal.SIGINT)  # as a terminal's Ctrl-C
    assert running.process.wait(20) == 0
    assert running.process.stderr.read() == ""
    stop_server(running.process)


@pytest.mark.browser
def test_search_then_open_the_hit_on_its_page(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    search(browser, server.url, "zebra stripes of noise")
    assert "q=zebra+stripes+of+noise" in browser.current_url
    first = browser.find_element(By.CSS_SELECTOR, "#results li.hit a.open")
    assert C1 in first.text and "p. 2" in first.text
    assert browser.find_elements(By.CSS_SELECTOR, "#results li.hit mark")
    first.click()
    WebDriverWait(browser, 30).until(page_image_loaded)
    highlight = browser.find_element(By.CSS_SELECTOR, ".sheet .hl")
    assert highlight.size["width"] > 100 and highlight.size["height"] > 5
    sheet = browser.find_element(By.CSS_SELECTOR, ".sheet")
    assert highlight.location["y"] >= sheet.location["y"]
    # The answer sentences are marked more strongly, inside the passage's highlight.
    passage = browser.find_elements(By.CSS_SELECTOR, ".sheet .hl:not(.hl-answer)")
    answer = browser.find_elements(By.CSS_SELECTOR, ".sheet .hl-answer")
    assert answer and answer[0].get_attribute("id") == "answer"
    top = min(box.location["y"] for box in passage)
    bottom = max(box.location["y"] + box.size["height"] for box in passage)
    for box in answer:
        assert box.size["width"] > 50 and box.size["height"] > 5
        assert top - 2 <= box.location["y"] and box.location["y"] + box.size["height"] <= bottom + 2
    assert answer[0].value_of_css_property("outline-style") == "solid"
    assert passage[0].value_of_css_property("outline-style") == "none"


@pytest.mark.browser
def test_a_markdown_hit_opens_on_its_section(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    search(browser, server.url, "why do the early layers of a deep plain network learn nothing")
    first = browser.find_element(By.CSS_SELECTOR, "#results li.hit a.open")
    assert "vault/week 2.md" in first.text and "§ Week 2 > Vanishing gradients (line 3)" \
        in first.text
    first.click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#note"))
    assert browser.find_element(By.CSS_SELECTOR, "#note #hit").text == "Vanishing gradients"
    marked = browser.find_elements(By.CSS_SELECTOR, "#note .hit")
    assert "okapi effect" in " ".join(block.text for block in marked)
    answer = browser.find_elements(By.CSS_SELECTOR, "#note .hit.answer")
    assert "okapi effect" in " ".join(block.text for block in answer)
    assert answer[0].value_of_css_property("outline-style") == "solid"
    assert marked[0].value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
    image = browser.find_element(By.CSS_SELECTOR, "#note img")
    WebDriverWait(browser, 10).until(lambda b: b.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", image))
    # The note's raw HTML is shown as text and its javascript: link is no link.
    assert "<script>" in browser.find_element(By.ID, "note").text
    assert browser.title.endswith("· notesearch") and "pwned" not in browser.title
    assert not browser.find_elements(By.CSS_SELECTOR, "#note a[href^='javascript']")


@pytest.mark.browser
def test_figure_thumbnails_load(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    search(browser, server.url, "recurrent networks read a sequence")
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#results img.thumb")
    assert thumbs
    for thumb in thumbs:  # they load lazily, once scrolled into view
        browser.execute_script("arguments[0].scrollIntoView()", thumb)
        WebDriverWait(browser, 10).until(lambda _, t=thumb: browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", t))


@pytest.mark.browser
def test_markup_in_a_query_stays_text(browser, server):
    from selenium.webdriver.common.by import By

    attack = '<img src=x onerror="document.title=\'pwned\'">sigmoid'
    search(browser, server.url, attack)
    assert browser.find_element(By.NAME, "q").get_attribute("value") == attack
    assert browser.title == f"{attack} · notesearch"  # shown as text; the handler never ran
    assert not browser.find_elements(By.CSS_SELECTOR, "main img:not(.thumb)")


@pytest.mark.parametrize("path", ["/page/../../etc/passwd", "/static/../web.py",
                                  "/page/%2e%2e/%2e%2e/etc/passwd", "/pdf/..%2f..%2fetc"])
def test_raw_traversal_requests_are_404(server, path):
    """Sent over a bare socket, so no client library tidies the `..` away first."""
    host, port = server.url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                     .encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert reply.split(b"\r\n", 1)[0].endswith(b"404 Not Found")
    assert b"root:" not in reply
