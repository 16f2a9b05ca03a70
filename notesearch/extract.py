"""PDF -> pages and figures, with pypdf.

Reading is streamed page by page so memory does not grow with the size of a PDF. A page that
pypdf cannot parse, or an image it cannot decode, costs that page or image only: it is reported
through `warn` and the rest of the file goes on.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import NoteUnreadable, one_line
from .layout import index_fault
from .records import Figure, FigureCounts, Page
from .textnorm import clean_page_text, letter_spaced

if TYPE_CHECKING:
    from PIL import Image

Warn = Callable[[str], None]

# Images smaller than this (either side) or nearly one colour are decoration: bullets, rules,
# icons. Slides and plots are far larger.
MIN_FIGURE_SIDE = 48
MIN_FIGURE_STDDEV = 4.0
# A page is a scan when its text layer holds fewer letters than this (none, or a scanner's
# stamp) and one image covers at least SCAN_MIN_COVERAGE of it. Slide screenshots in the course
# notes cover at most 0.44 of their page; a scanned page's image covers all of it.
SCAN_MAX_LETTERS = 20
SCAN_MIN_COVERAGE = 0.6

logging.getLogger("pypdf").setLevel(logging.ERROR)


def open_pdf(path: Path):
    """Open a PDF for reading, or raise NoteUnreadable saying why."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, LimitReachedError, PyPdfError

    try:
        if path.stat().st_size == 0:
            raise NoteUnreadable(f"{path.name}: empty file")
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")
            except Exception as exc:  # unsupported cipher, broken encryption dictionary
                raise NoteUnreadable(f"{path.name}: encrypted ({exc})") from exc
            if not unlocked:
                raise NoteUnreadable(
                    f"{path.name}: encrypted with a password; save a decrypted copy to index it"
                )
        len(reader.pages)  # forces the page tree to load: truncated files fail here
        return reader
    except NoteUnreadable:
        raise
    except PermissionError as exc:
        raise NoteUnreadable(f"{path.name}: permission denied") from exc
    except LimitReachedError as exc:  # pypdf's guards: page tree too deep, arrays too long
        raise NoteUnreadable(f"{path.name}: too deeply nested or too large to read safely "
                            f"({one_line(exc)})") from exc
    except NotImplementedError as exc:  # an encryption handler, version or method pypdf lacks
        raise NoteUnreadable(f"{path.name}: uses a PDF feature pypdf cannot read "
                            f"({one_line(exc)})") from exc
    except DependencyError as exc:  # a cipher whose library is missing from this environment
        raise NoteUnreadable(f"{path.name}: {one_line(exc)}") from exc
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError,
            RecursionError, AssertionError, IndexError, ZeroDivisionError) as exc:
        raise NoteUnreadable(f"{path.name}: not a readable PDF "
                            f"({type(exc).__name__}: {one_line(exc)})") from exc


def pdf_title(reader, path: Path) -> str:
    """The title a non-course PDF is shown under: its metadata title, else its file stem."""
    try:
        title = (reader.metadata or {}).get("/Title")
    except Exception:
        title = None
    return str(title).strip() if title and str(title).strip() else path.stem


def iter_pages(reader, path: Path, warn: Warn) -> Iterator[tuple[Page, object]]:
    """Yield each page's cleaned text with its pypdf page object (for figure extraction).

    Text is read in pypdf's default mode, which keeps a multi-column page's columns apart. A
    page it reads letter-spaced is read again in layout mode, which places glyphs by position
    and so joins them back into words ("keep_prob = 0.8"), but runs side-by-side columns
    together line by line: hence only then."""
    for number, pdf_page in enumerate(_pages(reader, path, warn), start=1):
        if pdf_page is None:
            yield Page(number, ""), None
            continue
        try:
            text = clean_page_text(pdf_page.extract_text() or "")
            if letter_spaced(text):
                text = clean_page_text(pdf_page.extract_text(extraction_mode="layout") or "")
        except Exception as exc:
            warn(f"{path.name} p. {number}: text not readable ({type(exc).__name__}); "
                 "page kept empty")
            text = ""
        yield Page(number, text), pdf_page


def is_scanned(page: Page, pdf_page) -> bool:
    """Whether this page is a scan: (almost) no text layer, under a page-sized image.

    Such a page is read by full-page OCR as prose; its image is not a figure.
    """
    if sum(ch.isalpha() for ch in page.text) >= SCAN_MAX_LETTERS:
        return False
    try:
        return image_coverage(pdf_page) >= SCAN_MIN_COVERAGE
    except Exception:  # an unparsable content stream: keep the page as it is
        return False


def image_coverage(pdf_page) -> float:
    """The largest share of the page's area one drawn image (or form) covers.

    An XObject is drawn into the unit square mapped by the current matrix, so its area on the
    page is the matrix's determinant; pypdf's text walk hands each operator that matrix.
    """
    box = pdf_page.mediabox
    area = abs(float(box.width) * float(box.height))
    if not area:
        return 0.0
    largest = 0.0

    def visit(operator: bytes, _operands, matrix, _text_matrix) -> None:
        nonlocal largest
        if operator == b"Do":
            a, b, c, d = (float(x) for x in matrix[:4])
            largest = max(largest, abs(a * d - b * c) / area)

    pdf_page.extract_text(visitor_operand_before=visit)
    return largest


def _pages(reader, path: Path, warn: Warn) -> Iterator[object | None]:
    count = len(reader.pages)
    for i in range(count):
        try:
            yield reader.pages[i]
        except Exception as exc:
            warn(f"{path.name} p. {i + 1}: page not readable ({type(exc).__name__})")
            yield None


def extract_figures(
    pdf_page, page_number: int, path: Path, figures_dir: Path, seen: set[str],
    counts: FigureCounts, warn: Warn,
) -> list[Figure]:
    """Save a page's images (see `save_image`) and return the ones worth keeping."""
    _silence_libtiff()
    try:
        images = pdf_page.images
        count = len(images)  # lists the image names without decoding any
    except Exception as exc:
        warn(f"{path.name} p. {page_number}: images not readable ({type(exc).__name__})")
        return []
    kept: list[Figure] = []
    for position in range(count):
        counts.found += 1
        try:
            image = images[position].image
            if image is None:
                raise ValueError("no image data")
            figure = save_image(image, page_number, figures_dir, seen, counts)
        except Exception as exc:
            if index_fault(exc, figures_dir.parent):  # saving it failed (a full disk), not the PDF
                raise
            counts.failed += 1
            warn(f"{path.name} p. {page_number}: image {position + 1} skipped, not decodable "
                 f"({type(exc).__name__})")
            continue
        if figure is not None:
            kept.append(figure)
    return kept


def save_image(image: Image.Image, page_number: int, figures_dir: Path, seen: set[str],
               counts: FigureCounts) -> Figure | None:
    """Save one decoded image (PIL) as a PNG figure of `page_number`, or None when it is
    decoration (too small, nearly one colour) or already seen in this document.

    Files are named by their hash, so the same slide in two documents (or twice in one) is
    stored once and a rebuild never rewrites a figure it already has. Every format's images
    pass through here, so they are filtered and stored alike; the caller counts them found.
    """
    from PIL import ImageStat

    width, height = image.size
    if min(width, height) < MIN_FIGURE_SIDE:
        counts.specks += 1
        return None
    grey = image.convert("L")
    if ImageStat.Stat(grey).stddev[0] < MIN_FIGURE_STDDEV:
        counts.specks += 1
        return None
    digest = hashlib.sha256(image.tobytes()).hexdigest()
    if digest in seen:
        counts.duplicates += 1
        return None
    seen.add(digest)
    relative = Path("figures") / digest[:2] / f"{digest}.png"
    target = figures_dir.parent / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        rgb = image if image.mode in ("RGB", "L", "RGBA") else image.convert("RGB")
        rgb.save(buffer, format="PNG")
        partial = target.with_suffix(".part")
        partial.write_bytes(buffer.getvalue())
        partial.replace(target)
    counts.kept += 1
    return Figure(page_number, digest, str(relative), width, height)


@functools.cache
def _silence_libtiff() -> None:
    """Switch off libtiff's stderr handlers, once per process.

    A damaged CCITT (fax) image makes libtiff print one line per bad code word, hundreds per
    image, straight to stderr past Python: a build's terminal would fill with them. Pillow
    raises on what matters. The library is found where Pillow loaded it (Linux); elsewhere
    nothing changes.
    """
    import PIL._imaging  # noqa: F401  (maps the libtiff Pillow decodes with)

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "libtiff" in line}
    except OSError:
        return
    for path in paths:
        try:
            libtiff = ctypes.CDLL(path)
            libtiff.TIFFSetErrorHandler(None)
            libtiff.TIFFSetWarningHandler(None)
        except (OSError, AttributeError):
            continue
