"""One PDF page as a PNG, and where on it a hit's passage or figure sits.

The web page view shows the rendered page with semi-transparent boxes over the passage that
answered the query. The passage's text comes from pypdf (at index time) and the boxes from
pdfium's text layer, so the two are aligned letter by letter rather than searched verbatim: the
extractors disagree on spaces, hyphens, ligatures and line breaks, hardly ever on letters.

pdfium is not thread-safe, so every call into it holds one module-wide lock.
"""

from __future__ import annotations

import ctypes
import difflib
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import NoteUnreadable
from .textnorm import letters

RENDER_WIDTH = 1240  # pixels; sharp on a laptop screen, ~150-300 kB per page
MIN_BLOCK = 8  # letters in a row that must agree before a match counts as the passage
MAX_EXTRA_GAP = 80  # page letters a cluster may skip beyond what the passage skips there
_DEVICE = 10_000  # virtual device size for pdfium's page -> device mapping (0.01 % steps)
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
    """Hold the pdfium lock with page `number` (1-based) of `pdf_path` open. A file that is
    no PDF any more, or lacks the page, raises NoteUnreadable."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(str(pdf_path))
        except pdfium.PdfiumError as exc:
            raise NoteUnreadable(f"{pdf_path.name} is not a readable PDF ({exc})") from None
        try:
            try:
                page = pdf[number - 1]
            except (pdfium.PdfiumError, IndexError) as exc:
                raise NoteUnreadable(f"{pdf_path.name} has no page {number} ({exc})") from None
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
    """Render with pdfium (fast, faithful fonts) at RENDER_WIDTH pixels wide, as PNG."""
    import io

    with _open_page(pdf_path, number) as page:
        scale = RENDER_WIDTH / page.get_size()[0]
        image = page.render(scale=scale, may_draw_forms=True).to_pil()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def render_for_ocr(pdf_path: Path, number: int, target: Path, dpi: int, max_side: int) -> None:
    """Save page `number` as a grey PNG at `dpi` (at most `max_side` pixels a side), for
    full-page OCR of a scanned page."""
    with _open_page(pdf_path, number) as page:
        width, height = page.get_size()
        scale = min(dpi / 72, max_side / max(width, height, 1))
        image = page.render(scale=scale, grayscale=True).to_pil()
    image.convert("L").save(target, format="PNG")


def _write_atomically(target: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so no reader ever sees half a PNG."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o644)  # mkstemp makes it private; the index's other files are not
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
    wanted = letters(passage)
    if not wanted:
        return []
    with _open_page(pdf_path, number) as page:
        textpage = page.get_textpage()
        try:
            on_page, char_of = _page_letters(textpage)
            span = best_span(on_page, wanted)
            if span is None:
                return []
            first, last = char_of[span[0]], char_of[span[1] - 1] + 1
            rects = [textpage.get_rect(i) for i in range(textpage.count_rects(first, last - first))]
            boxes = [_to_box(page, rect) for rect in _merge_lines(rects)]
        finally:
            textpage.close()
    return boxes


def line_boxes(lines: list[tuple[str, float, float, float, float]], passage: str) -> list[Box]:
    """Boxes over the OCR lines of a scanned page that hold `passage` (or its part there).

    Args:
        lines: the page's OCR lines in reading order: (text, left, top, width, height), the
            box in percent of the page.
        passage: the passage text as indexed.

    Returns:
        One box per line the passage touches, top to bottom; empty when it is not found.
    """
    wanted = letters(passage)
    per_line = [letters(line[0]) for line in lines]
    span = best_span("".join(per_line), wanted) if wanted else None
    if span is None:
        return []
    boxes, start = [], 0
    for line, text in zip(lines, per_line, strict=True):
        end = start + len(text)
        if text and start < span[1] and end > span[0]:
            boxes.append(Box(*line[1:]))
        start = end
    return boxes


def _page_letters(textpage) -> tuple[str, list[int]]:
    """The page's letters (as `textnorm.letters` makes them) and, for each, its pdfium char
    index."""
    import pypdfium2.raw as raw

    found: list[str] = []
    char_of: list[int] = []
    for i in range(textpage.count_chars()):
        code = raw.FPDFText_GetUnicode(textpage.raw, i)
        if not 0 < code < 0x110000:
            continue
        for letter in letters(chr(code)):
            found.append(letter)
            char_of.append(i)
    return "".join(found), char_of


def best_span(page: str, passage: str) -> tuple[int, int] | None:
    """The [start, end) range of `page` that best holds `passage` (both letters only).

    Runs of at least MIN_BLOCK agreeing letters are grouped into clusters that skip no more of
    the page than the passage skips (plus a little slack); the cluster covering most letters
    wins. A stray common word elsewhere on the page therefore cannot stretch the box.
    """
    matcher = difflib.SequenceMatcher(None, page, passage, autojunk=False)
    least = min(MIN_BLOCK, len(passage))
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
    """Join pdfium's per-run rectangles that share a line into one box per line fragment.

    Formulas come out as many small runs (sub- and superscripts); unmerged, their overlapping
    translucent boxes would show as a patchwork of darker spots.
    """
    merged: list[list[float]] = []
    for rect in rects:
        box = list(rect)
        changed = True
        while changed:
            changed = False
            for other in merged:
                if _same_line(box, other):
                    merged.remove(other)
                    box = [min(box[0], other[0]), min(box[1], other[1]),
                           max(box[2], other[2]), max(box[3], other[3])]
                    changed = True
                    break
        merged.append(box)
    merged.sort(key=lambda b: (-b[3], b[0]))
    return [(a, b, c, d) for a, b, c, d in merged]


def _same_line(a: list[float], b: list[float], gap: float = 12.0) -> bool:
    """Whether two (left, bottom, right, top) rectangles overlap vertically and nearly touch."""
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    horizontal_gap = max(a[0], b[0]) - min(a[2], b[2])
    return overlap > 0.3 * min(a[3] - a[1], b[3] - b[1]) and horizontal_gap < gap


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
    """A page-space point as percentages of the rendered page, by pdfium's own mapping."""
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


def rendered_size(pdf_path: Path, number: int) -> tuple[int, int]:
    """The pixel size `render_png` gives page `number`, so the browser reserves its space.

    With the space reserved, the page does not jump as the image arrives and `#hit` scrolls
    straight to the highlight.
    """
    with _open_page(pdf_path, number) as page:
        width, height = page.get_size()
    return RENDER_WIDTH, round(RENDER_WIDTH * height / width)
