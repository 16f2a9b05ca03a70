"""Plain records passed between the stages of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Page:
    """One unit a notes file is cited by, with its normalised text: a PDF page (1-based
    `number`, as users see it) or a Markdown section (numbered in file order, cited by its
    heading path `section` and the `line` it starts on)."""

    number: int
    text: str
    section: str = ""
    line: int = 0


@dataclass
class Figure:
    """An image embedded in a page, saved to disk under the index folder."""

    page: int
    sha256: str
    path: str  # relative to the index folder
    width: int
    height: int


@dataclass
class FigureCounts:
    """How many images a document held, and what became of them."""

    found: int = 0
    kept: int = 0
    specks: int = 0
    duplicates: int = 0
    failed: int = 0


@dataclass
class Document:
    """One notes file as its source module read it (see `notesearch.sources`): the same shape
    whatever the format, so the build stores, chunks and OCRs every format alike."""

    format: str  # the source module's FORMAT, stored per document
    title: str
    pages: list[Page]  # a scanned page's text is empty: full-page OCR gives it
    figures: list[Figure]
    counts: FigureCounts = field(default_factory=FigureCounts)
    scans: list[int] = field(default_factory=list)  # numbers of the scanned pages


@dataclass
class Chunk:
    """A passage of one document; `page`..`page_end` are the pages it spans."""

    text: str
    page: int
    page_end: int
    kind: str = "text"  # "text" or "figure"
    heading: str = ""

    @property
    def embedded_text(self) -> str:
        """What the embedder reads. A passage cut mid-section is preceded by its section heading,
        which names the topic its sentences leave unsaid (measured: dense MRR 0.77 -> 0.82 on the
        dev queries, up on both held-out sets too)."""
        if self.kind == "text" and self.heading and not self.text.startswith(self.heading):
            return f"{self.heading}. {self.text}"
        return self.text


@dataclass
class StoredDocument:
    """A document as the index holds it."""

    id: int
    name: str  # path relative to the notes folder
    path: str  # absolute path when indexed
    sha256: str  # of everything it was read from (see sources: fingerprint)
    course: int | None
    title: str
    pages: int  # pages, or sections of a Markdown note
    size: int
    indexed_at: str
    format: str  # "pdf", "markdown": the source module that read it


@dataclass
class StoredPassage:
    """A passage as search reads it, with what citing it needs from its document and page."""

    id: int
    doc_id: int
    page: int
    page_end: int
    kind: str  # "text" or "figure"
    text: str
    heading: str
    file: str
    course: int | None
    title: str
    format: str
    section: str  # its first page's heading path (Markdown), "" for a PDF page
    line: int  # the line that section starts on, 0 for a PDF page
    width: int = 0  # a figure passage: the figure's size in pixels
    height: int = 0


@dataclass
class StoredFigure:
    """A figure of a page."""

    path: str  # relative to the index folder
    page: int
    sha256: str


@dataclass
class PendingFigure:
    """A figure of a document still waiting for its OCR text."""

    id: int
    doc_id: int
    page: int
    sha256: str


@dataclass
class PendingScan:
    """A scanned page still waiting for full-page OCR, with its document's file."""

    doc_id: int
    number: int
    path: str
    sha256: str


@dataclass
class Hit:
    """One search result; `asdict(hit)` is the public JSON shape (add fields, never rename)."""

    rank: int
    score: float
    file: str
    course: int | None
    course_title: str
    page: int
    page_end: int
    text: str
    kind: str = "text"
    figures: list[dict] = field(default_factory=list)
    confident: bool = True
    doc_id: int = 0
    chunk_id: int = 0
    answer: str = ""  # the 1-3 sentences of the page that best answer the query
    format: str = "pdf"  # the notes file's format: "pdf" or "markdown"
    section: str | None = None  # a Markdown hit: its heading path ("page" numbers sections)
    line: int | None = None  # a Markdown hit: the line its section starts on


def pages_cited(page: int, page_end: int, section: str | None = None,
                line: int | None = None) -> str:
    """How a citation names where a hit is: "p. 12" or "pp. 12–13" in a PDF, "§ Week 2 >
    Dropout (line 40)" in a Markdown note."""
    if section is not None:
        return f"§ {section} (line {line})" if section else f"line {line}"
    return f"p. {page}" if page == page_end else f"pp. {page}–{page_end}"


@dataclass
class FigureHit:
    """A figure whose OCR text matches a query, cited like a passage."""

    rank: int
    score: float  # the share of the query's words (IDF-weighted) the figure prints, 0 to 1
    file: str
    course: int | None
    course_title: str
    page: int
    path: str  # absolute path of the PNG
    text: str
    section: str | None = None  # in a Markdown note: the heading path ("page" is its number)
    line: int | None = None  # in a Markdown note: the line its section starts on
    confident: bool = True  # False: the notes hold no confident answer (see Hit.confident)
