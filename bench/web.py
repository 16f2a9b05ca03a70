"""How fast the web app feels: time to first result in a real browser, page renders cold/cached.

    python bench/web.py --index /tmp/idx                  # prints a table
    python bench/web.py --index /tmp/idx --screenshots docs

The index is copied to a temporary folder first, so the rendered-page cache starts empty (the
cold case) and the given index is never written to. Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

QUERIES = ["why normalize the inputs", "vanishing gradients in recurrent networks",
           "what is dropout regularization", "bias and variance tradeoff",
           "intuition about derivatives", "how does beam search work",
           "padding in convolutions", "error analysis on the dev set"]
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--window-size=1280,1000"]


def start_server(index: Path) -> tuple[subprocess.Popen, str]:
    """`notesearch serve` on a free port; returns once it answers, with its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "notesearch", "serve", "--index", str(index), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            if httpx.get(url + "api/status", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    stop_server(process)
    raise SystemExit("the server did not start")


def stop_server(process: subprocess.Popen) -> None:
    """Ctrl-C, then SIGKILL to the process group if it does not stop."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def browser(profile: Path):
    """Headless Chromium with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def navigation_seconds(driver, event: str) -> float:
    """The browser's own clock (Navigation Timing): from the request to `event`, no WebDriver."""
    return driver.execute_script(
        f"const n = performance.getEntriesByType('navigation')[0]; return n.{event} - n.startTime;"
    ) / 1000


def time_to_results(driver, url: str, query: str) -> tuple[float, float]:
    """Seconds from pressing Enter to the results list in the DOM: wall clock, browser clock."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    box = driver.find_element(By.NAME, "q")
    box.send_keys(query)
    started = time.perf_counter()
    box.send_keys(Keys.ENTER)
    WebDriverWait(driver, 60, poll_frequency=0.01).until(
        shown.presence_of_element_located((By.CSS_SELECTOR, "#results li.hit")))
    return time.perf_counter() - started, navigation_seconds(driver, "domContentLoadedEventEnd")


def time_page_view(driver) -> tuple[float, float]:
    """Seconds from clicking the first result to its page image shown: wall, browser clock."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    link = driver.find_element(By.CSS_SELECTOR, "#results li.hit a.open")
    started = time.perf_counter()
    link.click()
    WebDriverWait(driver, 60, poll_frequency=0.01).until(lambda d: d.execute_script(
        "const i = document.getElementById('page-image');"
        "return Boolean(i && i.complete && i.naturalWidth > 0);"))
    return time.perf_counter() - started, navigation_seconds(driver, "loadEventEnd")


def timed_get(client: httpx.Client, url: str) -> float:
    """Seconds for one GET, body included, failing loudly on an error status."""
    started = time.perf_counter()
    client.get(url).raise_for_status()
    return time.perf_counter() - started


def http_page_views(url: str) -> dict[str, list[float]]:
    """Page-view HTML and PNG times over HTTP for each query's top page, cold then cached."""
    times: dict[str, list[float]] = {key: [] for key in
                                     ("html cold", "png cold", "html cached", "png cached")}
    with httpx.Client(base_url=url, timeout=60) as client:
        pages = []
        for query in QUERIES:
            hit = client.get("/api/search", params={"q": query, "k": 1}).json()[0]
            pages.append((f"/page/{hit['doc_id']}/{hit['page']}?chunk={hit['chunk_id']}",
                          f"/render/{hit['doc_id']}/{hit['page']}.png"))
        pages = list(dict.fromkeys(pages))
        for state in ("cold", "cached"):
            for html, png in pages:
                times[f"html {state}"].append(timed_get(client, html))
                times[f"png {state}"].append(timed_get(client, png))
    return times


def screenshots(driver, url: str, folder: Path) -> list[Path]:
    """docs/search.png (a results list) and docs/page.png (the first hit on its page)."""
    folder.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(1280, 1100)
    time_to_results(driver, url, "why normalize the inputs")
    driver.save_screenshot(str(folder / "search.png"))
    time_page_view(driver)
    driver.get(driver.current_url.split("#")[0])  # from the top: pager, citation, page
    driver.set_window_size(1280, 1500)
    time.sleep(0.5)
    driver.save_screenshot(str(folder / "page.png"))
    return [folder / "search.png", folder / "page.png"]


def row(name: str, values: list[float]) -> str:
    """One table line in milliseconds: count, median, min, max."""
    ms = sorted(v * 1000 for v in values)
    return (f"{name:<44} {len(ms):>3} {statistics.median(ms):>9.0f} {ms[0]:>8.0f} "
            f"{ms[-1]:>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, default=Path("/tmp/idx"))
    parser.add_argument("--screenshots", type=Path, help="folder for search.png and page.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        index = Path(temp) / "index"
        shutil.copytree(args.index, index, ignore=shutil.ignore_patterns("renders", ".lock"))
        process, url = start_server(index)
        driver = browser(Path(temp) / "profile")
        try:
            first = [time_to_results(driver, url, QUERIES[0])]
            warm = [time_to_results(driver, url, q) for q in QUERIES[1:]]
            view_cold = [time_page_view(driver)]
            view_cached = []
            for _ in range(3):
                driver.back()
                view_cached.append(time_page_view(driver))
            shutil.rmtree(index / "renders", ignore_errors=True)
            http = http_page_views(url)
            shots = screenshots(driver, url, args.screenshots) if args.screenshots else []
        finally:
            driver.quit()
            stop_server(process)
    print(f"{'measure (ms)':<44} {'n':>3} {'median':>9} {'min':>8} {'max':>8}")
    for name, pairs in [("Enter -> results, first query", first),
                        ("Enter -> results, later queries", warm),
                        ("click -> page image shown, cold", view_cold),
                        ("click -> page image shown, cached", view_cached)]:
        print(row(f"browser: {name}", [wall for wall, _ in pairs]))
        print(row("  of which in the browser (Navigation Timing)", [own for _, own in pairs]))
    for key, values in http.items():
        print(row(f"http: page view {key}", values))
    for shot in shots:
        print(f"screenshot: {shot}")


if __name__ == "__main__":
    main()
