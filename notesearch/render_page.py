"""One PDF page as a PNG, and where on it a hit's passage or figure sits.

The web page view shows the rendered page with semi-transparent boxes over the passage that
answered the query. The passage's text comes from pypdf (at index time) and the boxes from
pdfium's text layer, so the two are aligned word by word rather than searched verbatim: the
extractors disagree on hyphens, ligatures and line breaks, never on most words.

pdfium is not thread-safe, so every call into it holds one module-wide lock.
"""

from __future__ import annotations

import ctypes
import difflib
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RENDER_WIDTH = 1240  # pixels; sharp on a laptop screen, ~150-300 kB per page
MIN_BLOCK = 3  # words in a row that must agree before a match counts as the passage
MAX_EXTRA_GAP = 15  # page words a cluster of matches may skip beyond what the passage skips
_DEVICE = 10_000  # virtual device size for pdfium's page -> device mapping (0.01 % steps)
_WORD = re.compile(r"[^\W_]+")
_PDFIUM = threading.Lock()


@dataclass(frozen=True)
class Box:
    """A rectangle on the page, as percentages of the rendered page's width and height."""

    left: float
    top: float
    width: float
    height: float


@contextmanager
def _open_page(pdf_path: Path, number: int) -> Iterator[object]:
    """Hold the pdfium lock with page `number` (1-based) of `pdf_path` open."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        pdf = pdfium.PdfDocument(str(pdf_path))
        try:
            page = pdf[number - 1]
            try:
                yield page
            finally:
                page.close()
        finally:
            pdf.close()


def render_png(pdf_path: Path, number: int, cache: Path | None, key: str) -> bytes:
    """Page `number` of `pdf_path` as PNG bytes, rendered once and kept in `cache`.

    Args:
        pdf_path: the PDF to render.
        number: 1-based page number, already checked to exist.
        cache: folder for rendered pages (`index/renders`), or None not to cache.
        key: what identifies the document's content (its sha256), so an edited PDF gets a
            fresh render instead of a stale one.

    Returns:
        The PNG file's bytes.
    """
    target = cache / key[:2] / f"{key}-p{number}-w{RENDER_WIDTH}.png" if cache else None
    if target is not None and target.exists():
        return target.read_bytes()
    data = _render(pdf_path, number)
    if target is not None:
        try:
            _write_atomically(target, data)
        except OSError:
            pass  # a read-only index folder still serves pages, only uncached
    return data


def _render(pdf_path: Path, number: int) -> bytes:
    import io

    with _open_page(pdf_path, number) as page:
        scale = RENDER_WIDTH / page.get_width()
        image = page.render(scale=scale, may_draw_forms=True).to_pil()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _write_atomically(target: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so no reader ever sees half a PNG."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- passage boxes

def passage_boxes(pdf_path: Path, number: int, passage: str) -> list[Box]:
    """Boxes over the lines of page `number` that hold `passage` (or its part on that page).

    Args:
        pdf_path: the indexed PDF.
        number: 1-based page number.
        passage: the passage text as indexed (a passage may run over onto the next page).

    Returns:
        One box per line fragment, top to bottom; empty when the page has no text layer or
        the passage cannot be found on it.
    """
    wanted = [w.lower() for w in _WORD.findall(unicodedata.normalize("NFKC", passage))]
    if not wanted:
        return []
    with _open_page(pdf_path, number) as page:
        textpage = page.get_textpage()
        try:
            words = _page_words(textpage)
            span = best_span([w for w, _, _ in words], wanted)
            if span is None:
                return []
            first, last = words[span[0]][1], words[span[1] - 1][2]
            rects = [textpage.get_rect(i) for i in range(textpage.count_rects(first, last - first))]
            boxes = [_to_box(page, rect) for rect in _merge_lines(rects)]
        finally:
            textpage.close()
    return boxes


def _page_words(textpage) -> list[tuple[str, int, int]]:
    """The page's words, lower-cased and NFKC-normalised, with [start, end) char indices."""
    import pypdfium2.raw as raw

    chars = []
    for i in range(textpage.count_chars()):
        code = raw.FPDFText_GetUnicode(textpage.raw, i)
        chars.append(unicodedata.normalize("NFKC", chr(code)) if 0 < code < 0x110000 else " ")
    words: list[tuple[str, int, int]] = []
    current, start = "", 0
    for i, text in enumerate([*chars, " "]):
        if text and all(ch.isalnum() for ch in text):
            if not current:
                start = i
            current += text.lower()
        elif current:
            words.append((current, start, i))
            current = ""
    return words


def best_span(page_words: list[str], passage_words: list[str]) -> tuple[int, int] | None:
    """The [start, end) range of `page_words` that best holds `passage_words`.

    Runs of at least MIN_BLOCK agreeing words are grouped into clusters that skip no more of
    the page than the passage skips (plus a little slack); the cluster covering most words
    wins. A stray three-word phrase elsewhere on the page therefore cannot stretch the box.
    """
    matcher = difflib.SequenceMatcher(None, page_words, passage_words, autojunk=False)
    least = min(MIN_BLOCK, len(passage_words))
    blocks = [b for b in matcher.get_matching_blocks() if b.size >= least]
    if not blocks:
        return None
    clusters: list[list] = [[blocks[0]]]
    for block in blocks[1:]:
        previous = clusters[-1][-1]
        page_gap = block.a - (previous.a + previous.size)
        passage_gap = block.b - (previous.b + previous.size)
        if page_gap > passage_gap + MAX_EXTRA_GAP:
            clusters.append([block])
        else:
            clusters[-1].append(block)
    best = max(clusters, key=lambda c: sum(b.size for b in c))
    return best[0].a, best[-1].a + best[-1].size


def _merge_lines(rects: list[tuple[float, float, float, float]]
                 ) -> list[tuple[float, float, float, float]]:
    """Join pdfium's per-run rectangles that sit side by side on one line into one box."""
    merged: list[list[float]] = []
    for left, bottom, right, top in rects:
        if merged:
            m = merged[-1]
            overlap = min(top, m[3]) - max(bottom, m[1])
            same_line = overlap > 0.5 * min(top - bottom, m[3] - m[1])
            if same_line and left - m[2] < 12:
                m[:] = [min(m[0], left), min(m[1], bottom), max(m[2], right), max(m[3], top)]
                continue
        merged.append([left, bottom, right, top])
    return [(a, b, c, d) for a, b, c, d in merged]


def _to_box(page, rect: tuple[float, float, float, float]) -> Box:
    """Page-space rectangle (points, origin bottom-left) -> percentages of the rendered page.

    pdfium's own page -> device mapping is used, so crop boxes and /Rotate are honoured exactly
    as when the page was rendered.
    """
    left, bottom, right, top = rect
    x0, y0 = _to_device(page, left, top)
    x1, y1 = _to_device(page, right, bottom)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    pad = 0.15  # a hair of margin so descenders and accents stay inside the box
    return Box(left=round(max(x0 - pad, 0.0), 2), top=round(max(y0 - pad, 0.0), 2),
               width=round(min(x1 - x0 + 2 * pad, 100.0), 2),
               height=round(min(y1 - y0 + 2 * pad, 100.0), 2))


def _to_device(page, x: float, y: float) -> tuple[float, float]:
    import pypdfium2.raw as raw

    width, height = page.get_size()
    size_x = _DEVICE
    size_y = max(1, round(_DEVICE * height / width))
    dx, dy = ctypes.c_int(), ctypes.c_int()
    raw.FPDF_PageToDevice(page.raw, 0, 0, size_x, size_y, 0, x, y, dx, dy)
    return 100.0 * dx.value / size_x, 100.0 * dy.value / size_y


# ----------------------------------------------------------------------------- figure boxes

def figure_boxes(pdf_path: Path, number: int, pixel_size: tuple[int, int]) -> list[Box]:
    """Boxes over the images on page `number` whose pixel size is `pixel_size`.

    The index stores each figure's pixel size (as decoded at index time); pdfium reports the
    same size for the image object, which tells apart the images of one page in practice.
    """
    import pypdfium2.raw as raw

    boxes = []
    with _open_page(pdf_path, number) as page:
        for image in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE], max_depth=2):
            try:
                if tuple(image.get_px_size()) != tuple(pixel_size):
                    continue
                bounds = image.get_bounds() if hasattr(image, "get_bounds") else image.get_pos()
            except Exception:  # a broken image object costs only its own box
                continue
            boxes.append(_to_box(page, tuple(bounds)))
    return boxes


def page_count(pdf_path: Path) -> int:
    """How many pages pdfium sees in `pdf_path` (a check that the file is still the PDF)."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        pdf = pdfium.PdfDocument(str(pdf_path))
        try:
            return len(pdf)
        finally:
            pdf.close()
