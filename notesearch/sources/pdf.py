"""PDF notes: a page is the unit of citation; its text layer is its text (see extract.py).

A scanned page (no usable text layer under a page-sized image) is listed in `scans` with empty
text: the build's OCR phase reads the whole page, and its image is no figure.
"""

from __future__ import annotations

from pathlib import Path

from ..courses import COURSES, recognise_course
from ..extract import Warn, extract_figures, is_scanned, iter_pages, open_pdf, pdf_title
from ..hashing import file_sha256
from ..records import Document, Page
from .folder import NotesFolder

FORMAT = "pdf"
NAME = "PDF"
SUFFIXES = (".pdf",)
ASSET_SUFFIXES: tuple[str, ...] = ()  # a PDF holds its images


def fingerprint(path: Path, folder: NotesFolder) -> str:
    """A PDF is read from itself alone."""
    return file_sha256(path)


def read(path: Path, folder: NotesFolder, figures_dir: Path, warn: Warn) -> Document:
    """Pages, figures and scanned pages of one PDF; raises whatever the PDF makes libraries
    raise (the build's fault barrier turns that into one skipped file)."""
    reader = open_pdf(path)
    document = Document(FORMAT, "", [], [])
    seen: set[str] = set()
    for page, pdf_page in iter_pages(reader, path, warn):
        if pdf_page is not None and is_scanned(page, pdf_page):
            document.scans.append(page.number)
            document.pages.append(Page(page.number, ""))  # a scanner's stamp is no text
            continue
        document.pages.append(page)
        if pdf_page is not None:
            document.figures.extend(extract_figures(pdf_page, page.number, path, figures_dir,
                                                    seen, document.counts, warn))
    course = recognise_course(path.name)
    document.title = COURSES[course] if course else pdf_title(reader, path)
    return document
