"""The part of a passage worth showing for a query, with the query's words marked."""

from __future__ import annotations

import re

from .query import terms

SNIPPET_WORDS = 45


def stem(word: str) -> str:
    """A word's first five letters, lower-cased: the prefix two words share when FTS5's
    stemmer would match them ("normalizing", "normalization")."""
    return word.lower()[:5] if len(word) > 5 else word.lower()


def snippet(text: str, query: str, width: int = SNIPPET_WORDS) -> list[tuple[str, bool]]:
    """The `width`-word window of `text` holding most query words, as (segment, is_match) parts.

    Words match on a shared 5-letter prefix, so "normalizing" marks "normalization" as FTS5's
    stemmer would have matched it.
    """
    wanted = {stem(t) for t in terms(query)}
    words = text.split()
    flags = [stem(re.sub(r"\W+", "", w)) in wanted and bool(re.sub(r"\W+", "", w))
             for w in words]
    start = 0
    if len(words) > width:
        sums = [sum(flags[i:i + width]) for i in range(len(words) - width + 1)]
        start = max(range(len(sums)), key=lambda i: (sums[i], -i))
    window = range(start, min(len(words), start + width))
    parts: list[tuple[str, bool]] = []
    if start > 0:
        parts.append(("… ", False))
    for n, i in enumerate(window):
        separator = " " if n else ""
        parts.append((separator, False))
        parts.append((words[i], flags[i]))
    if window.stop < len(words):
        parts.append((" …", False))
    return [p for p in parts if p[0]]


def shown(text: str, answer: str, query: str) -> list[tuple[str, bool]]:
    """What a hit shows under its citation: its answer sentences whole, query words marked;
    the passage's best window when the page gave no answer (a page of formulas only)."""
    if answer:
        return snippet(answer, query, width=len(answer.split()))
    return snippet(text, query)
