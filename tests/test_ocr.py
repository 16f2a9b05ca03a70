"""OCR workers: one compute thread each, no OCR of images that cannot hold text, and one bad
image (or a dead worker) costing only itself. Real RapidOCR on generated images."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from notesearch.ocr import OcrCache, no_room_for_text, ocr_pool, read_figures


def slide(path: Path, words: str) -> Path:
    image = Image.new("RGB", (560, 120), "white")
    ImageDraw.Draw(image).text((20, 35), words, fill="black",
                               font=ImageFont.load_default(size=40))
    image.save(path)
    return path


@pytest.fixture
def cache(tmp_path):
    cache = OcrCache(tmp_path / "ocr-cache.db")
    yield cache
    cache.close()


def test_bad_images_cost_only_themselves(tmp_path, cache, capsys):
    good = slide(tmp_path / "good.png", "Gradient descent")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    flat = tmp_path / "flat.png"
    Image.new("RGB", (400, 300), (200, 30, 30)).save(flat)
    images = {"good": good, "truncated": truncated, "empty": empty, "flat": flat,
              "missing": tmp_path / "missing.png"}
    warnings: list[str] = []

    texts = dict(read_figures(images, cache, progress=True, workers=2, warn=warnings.append))

    shown = capsys.readouterr().err  # off a terminal: plain lines (if any: phases over 5 s)
    assert "\r" not in shown and all(line.startswith("notesearch: OCR ")
                                      for line in shown.splitlines())
    assert texts.keys() == images.keys()
    assert "gradient descent" in texts["good"].lower()
    assert texts["flat"] == ""  # cannot hold text: read, as empty
    assert texts["truncated"] is texts["empty"] is texts["missing"] is None  # failed
    assert sorted(w.split("figure ")[1].split(" (")[0] for w in warnings) == sorted(
        str(images[name]) for name in ("truncated", "empty", "missing"))
    # read and skipped images are cached; failed ones are tried again by a later build
    assert cache.get(list(images)).keys() == {"good", "flat"}


def test_images_without_room_for_text(tmp_path):
    def saved(image: Image.Image, name: str) -> Path:
        image.save(tmp_path / name)
        return tmp_path / name

    assert "too small" in no_room_for_text(saved(Image.new("RGB", (300, 8), "white"), "a.png"))
    assert no_room_for_text(saved(Image.new("L", (300, 200), 128), "b.png")) == "one flat colour"
    pale = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(pale).text((10, 80), "pale grey words", fill=(225, 225, 225),
                              font=ImageFont.load_default(size=24))
    assert no_room_for_text(saved(pale, "c.png")) is None
    assert no_room_for_text(slide(tmp_path / "d.png", "x")) is None
    # black words on a transparent background: the colour is flat, the alpha is not
    clear = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(clear).text((10, 80), "transparent", fill=(0, 0, 0, 255),
                               font=ImageFont.load_default(size=24))
    assert no_room_for_text(saved(clear, "e.png")) is None


def test_a_dead_worker_costs_no_figure(tmp_path, cache):
    good = slide(tmp_path / "good.png", "Batch normalization")
    images = {f"copy-{i}": good for i in range(8)}
    warnings: list[str] = []
    texts = {}
    for sha, text in read_figures(images, cache, progress=False, workers=2,
                                  warn=warnings.append):
        if not texts:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)
        texts[sha] = text

    assert texts.keys() == images.keys()
    assert all("batch normalization" in text.lower() for text in texts.values())
    assert any("worker died" in w for w in warnings)


def _thread_settings(path: str) -> dict[str, object]:
    import cv2
    from threadpoolctl import threadpool_info

    from notesearch import ocr

    ocr.ocr_lines(ocr._engine, Path(path))
    sessions = [ocr._engine.text_det.session.session, ocr._engine.text_rec.session.session]
    return {
        "cv2": cv2.getNumThreads(),
        "onnxruntime": {(s.get_session_options().intra_op_num_threads,
                         s.get_session_options().inter_op_num_threads) for s in sessions},
        "blas": {pool["num_threads"] for pool in threadpool_info()},
    }


def test_workers_compute_on_one_thread(tmp_path):
    pytest.importorskip("threadpoolctl")
    path = slide(tmp_path / "s.png", "Adam optimizer")
    with ocr_pool(1) as pool:
        settings = pool.submit(_thread_settings, str(path)).result()
    assert settings == {"cv2": 1, "onnxruntime": {(1, 1)}, "blas": {1}}


def _kill_workers_opening(stop: threading.Event) -> None:
    """Kill every OCR worker stuck opening the FIFO: a worker dying on that one image."""
    while not stop.wait(0.05):
        for child in multiprocessing.active_children():
            try:
                if Path(f"/proc/{child.pid}/wchan").read_text() == "wait_for_partner":
                    os.kill(child.pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux /proc")
def test_an_image_that_kills_its_worker_costs_only_itself(tmp_path, cache):
    good = slide(tmp_path / "good.png", "Dropout")
    fifo = tmp_path / "deadly.png"
    os.mkfifo(fifo)  # opening it blocks until the watcher kills the worker holding it
    images = {f"copy-{i}": good for i in range(3)} | {"deadly": fifo} | {
        f"later-{i}": good for i in range(6)}
    warnings: list[str] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_kill_workers_opening, args=(stop,))
    watcher.start()
    try:
        texts = dict(read_figures(images, cache, progress=False, workers=2,
                                  warn=warnings.append))
    finally:
        stop.set()
        watcher.join()

    assert texts.keys() == images.keys()
    assert texts["deadly"] is None
    assert all("dropout" in texts[sha].lower() for sha in images if sha != "deadly")
    assert [w for w in warnings if "could not OCR" in w] == [
        f"could not OCR figure {fifo} (its OCR worker died); the next build tries again"]
    assert cache.get(list(images)).keys() == images.keys() - {"deadly"}
