"""Page-aware chunking: a document's pages -> passages that know their pages.

Passages are cut on sentence and line boundaries to about TARGET_WORDS words, which keeps them
inside the embedding model's 256-token window, and the last sentence of a passage opens the
next one so that an idea cut at a boundary is still whole in one of them. A page's short
remainder joins the next page's first passage (it is usually a sentence running over the page
break), and that passage records both pages. A unit that names its section (a Markdown
section) is cut on its own: its passages never reach into the next section, and they carry the
section's heading path as their heading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .records import Chunk, Page

CHUNKER_VERSION = 5  # bumped when passages are cut or embedded differently, or pages read so
TARGET_WORDS = 150
MAX_WORDS = 220
MIN_WORDS = 40
OVERLAP_WORDS = 30

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^a-z])")
_HEADING = re.compile(r"^[A-Z0-9][^.!?]{2,80}$")
# "Gated Recurrent Unit 14", "1.3 Linear models . . . . 2", or a page number alone on its line.
_CONTENTS_LINE = re.compile(r"\d{1,3}|.*[A-Za-z].*\s[.\s]*\d{1,3}")
CONTENTS_MIN_LINES = 5
CONTENTS_LINE_MAX = 160
CONTENTS_SHARE = 0.3


def split_units(text: str) -> list[str]:
    """Sentences and stand-alone lines (headings, bullets) of one page, in order."""
    units: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if line:
            units.extend(part for part in _SENTENCE_END.split(line) if part.strip())
    return _split_long(units)


def _split_long(units: Iterable[str]) -> list[str]:
    out: list[str] = []
    for unit in units:
        words = unit.split()
        for start in range(0, len(words), MAX_WORDS):
            out.append(" ".join(words[start:start + MAX_WORDS]))
    return out


def is_heading(unit: str) -> bool:
    """A short capitalised line without a sentence end: a section or slide title."""
    return len(unit.split()) <= 8 and bool(_HEADING.match(unit))


def is_contents(text: str) -> bool:
    """A table of contents: many of the page's lines end in (or are) a page number."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    # A contents line is short; the pattern backtracks quadratically on a long one.
    numbered = sum(len(line) <= CONTENTS_LINE_MAX and bool(_CONTENTS_LINE.fullmatch(line))
                   for line in lines)
    return numbered >= CONTENTS_MIN_LINES and numbered >= CONTENTS_SHARE * len(lines)


def chunk_pages(pages: Iterable[Page]) -> list[Chunk]:
    """Cut one document's pages into passages; empty pages yield none."""
    chunks: list[Chunk] = []
    current: list[tuple[str, int]] = []  # (unit, page number)
    carried = 0  # leading units of `current` already emitted: the overlap
    heading = ""
    passage_heading = ""

    def emit() -> None:
        chunks.append(Chunk(
            text=" ".join(u for u, _ in current),
            page=current[0][1], page_end=current[-1][1], heading=passage_heading,
        ))

    for page in pages:
        if page.section:
            if current[carried:]:
                emit()
            current, carried, heading = [], 0, page.section
        for unit in _units(page):
            if is_heading(unit) and not page.section:
                heading = unit
            if len(current) == carried:
                passage_heading = heading
            elif _words(current) + len(unit.split()) > MAX_WORDS:
                emit()
                current, carried, passage_heading = _overlap(current), 0, heading
                carried = len(current)
            current.append((unit, page.number))
            if _words(current[carried:]) and _words(current) >= TARGET_WORDS:
                emit()
                current = _overlap(current)
                carried = len(current)
        fresh = current[carried:]
        if fresh and (_words(fresh) >= MIN_WORDS or page.section):
            emit()
            fresh = []
        # Overlap never crosses a page; a short fresh remainder joins the next page's passage.
        current, carried = fresh, 0
    if current:
        emit()
    return chunks


def _units(page: Page) -> list[str]:
    """The units a page is cut from. A PDF's table of contents yields none (its lines would
    match every query's words); a section never counts as one (a table of numbers under a
    heading is content), and a section holding only its heading yields none either: the
    heading is in the passages of the sections under it."""
    if page.section:
        units = split_units(page.text)
        return [] if units == [page.section.rsplit(" > ", 1)[-1]] else units
    return [] if is_contents(page.text) else split_units(page.text)


def _words(units: list[tuple[str, int]]) -> int:
    return sum(len(u.split()) for u, _ in units)


def _overlap(units: list[tuple[str, int]]) -> list[tuple[str, int]]:
    tail: list[tuple[str, int]] = []
    for unit in reversed(units):
        if _words(tail) + len(unit[0].split()) > OVERLAP_WORDS:
            break
        tail.insert(0, unit)
    return tail
