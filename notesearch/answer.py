"""The one to three consecutive sentences of a hit's page that best answer the query.

A page ranks on all its evidence, but a learner reads one spot of it. Every window of 1-3
consecutive sentences of the page is scored by meaning plus the query's words it holds (each
weighted by how few of the page's sentences hold it), capped at MAX_WORDS so it reads as a
snippet.

Meaning is judged per passage: a sentence counts with the cosine of the stored passage vector
that holds it, which tells the page's paragraphs apart for free. Each sentence's own cosine
was tried and dropped: judged blind on 76 questions it answered worse (12 answers judged yes
against 17; bench/data/README.md), as a sentence alone loses its passage's context, and a
model run per sentence at query time would cost several times a search's 15 ms.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from .query import Query
from .snippet import stem
from .textnorm import letters

MAX_WORDS = 60  # an answer longer than this stops being a snippet
MIN_WORDS = 8  # a window shorter than this (a heading, a label) is no answer on its own
MAX_SENTENCES = 3
PIECE_WORDS = 30  # a run-on "sentence" (bullets without stops) is cut into pieces of this size
LEXICAL_WEIGHT = 0.3  # weight of the query words a window holds (0..1) against cosine
# Judged on 76 questions, one-sentence answers too often restated the question and stopped
# before its answer (the sentence after): a window under FULL_WORDS words pays up to
# SHORT_COST, and each extra sentence only LONGER_COST.
LONGER_COST = 0.01
FULL_WORDS = 40
SHORT_COST = 0.2
PAGES_CACHED = 512  # pages kept split into sentences
SHORT_LINE = 0.85  # a line this much shorter than the page's longest ends its sentence

_BULLET = re.compile(r"^(?:[•◦▪▸►‣∙·*\-–—]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")
_ENDS_SENTENCE = re.compile(r"[.!?][\"”’')\]]*$")
_CONTINUES = re.compile(r"(?:[,;(/\-–]|\b(?:a|an|the|of|and|or|to|in|on|for|by|with|is|are|"
                        r"as|that|this|from|at|be|we|you|it|its|if|than|but|so)\b)$",
                        re.IGNORECASE)
_STARTS_NEW = re.compile(r"^[\"“‘'(\[]?[A-Z0-9]")
_SPLIT = re.compile(r"(?<=[.!?])[\"”’')\]]*\s+(?=[\"“‘'(\[]?[A-Z0-9])")
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|al|vs|etc|cf|fig|eq|approx|resp|no)\.$",
                           re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+")
_GLYPH_RUN = re.compile(r"(?:(?<=\s)|^)(?:\S\s+){6,}(?:\S(?=\s|$))?")


@dataclass
class Evidence:
    """What a hit's answer is picked from: its page's text (a figure hit: its OCR text), the
    stored passages of that page and their cosines with the query."""

    text: str
    passages: tuple[str, ...] = ()
    cosines: tuple[float, ...] = ()


@dataclass
class _Sentences:
    """What a page's text yields whatever the query: its sentences, the stems of each one's
    words, which of the page's passages hold each one whole, and word counts (`words[i]`: of
    the sentences before sentence i)."""

    sentences: list[str]
    stems: list[set[str]]
    holders: list[list[int]]
    words: list[int]


@dataclass
class _Page:
    """One hit's sentences, the query's stems each holds, and each one's closeness in
    meaning (the cosine of the best passage holding it)."""

    sentences: list[str]
    stems: list[set[str]]
    dense: list[float]
    words: list[int]  # running word counts (see _Sentences)


def split_sentences(text: str) -> list[str]:
    """The sentences of a page's text, in order.

    PDF text breaks lines mid-sentence (sometimes with a blank line after every line), and
    notes written as bullets end items with a line break instead of a stop. A line break ends a
    sentence before a bullet, and before a capital (or digit) when the line before ends with a
    stop or colon or stops short of the page's width (a heading, a bullet's last line), unless
    it reads as unfinished (a comma, "the", "and"...). Lines of one-letter "words" (formulas
    pdfium extracts glyph by glyph) are left out: they are not readable.
    """
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    width = max((len(line) for line in lines), default=0)
    blocks: list[str] = []
    last = ""
    for line in lines:
        ends = bool(_ENDS_SENTENCE.search(last) or last.endswith(":")) or \
            len(last) < SHORT_LINE * width
        if blocks and not _BULLET.match(line) and not (
                _STARTS_NEW.match(line) and ends and not _CONTINUES.search(last)):
            blocks[-1] = f"{blocks[-1]} {line}"
        else:
            blocks.append(_BULLET.sub("", line) or line)
        last = line
    sentences: list[str] = []
    for block in blocks:
        pending = ""
        for part in _SPLIT.split(block):
            pending = f"{pending} {part}" if pending else part
            if not _ABBREVIATION.search(pending):
                sentences.extend(_pieces(pending))
                pending = ""
        if pending:
            sentences.extend(_pieces(pending))
    return [s for s in map(_without_glyph_runs, sentences) if _readable(s)]


def _pieces(sentence: str) -> list[str]:
    """A sentence, or one longer than MAX_WORDS (bullets run together without stops) cut
    into about PIECE_WORDS-word pieces, each ending at a comma or semicolon when one is near."""
    words = sentence.split()
    pieces: list[str] = []
    while len(words) > MAX_WORDS:
        cut = PIECE_WORDS
        for i in range(PIECE_WORDS - PIECE_WORDS // 3, PIECE_WORDS + PIECE_WORDS // 3):
            if words[i - 1][-1] in ",;:":
                cut = i
                break
        pieces.append(" ".join(words[:cut]))
        words = words[cut:]
    return [*pieces, " ".join(words)]


def _without_glyph_runs(sentence: str) -> str:
    """The sentence without runs of one-letter tokens (a formula pdfium spelt out glyph by
    glyph inside a line of prose: "( w , b , . . . w , b , )")."""
    if sum(len(w) == 1 for w in sentence.split()) < 6:
        return sentence
    return _GLYPH_RUN.sub(" ", sentence).strip()


def _readable(sentence: str) -> bool:
    """Not formula debris: some letters, and mostly words longer than one character."""
    words = sentence.split()
    return any(ch.isalpha() for ch in sentence) and \
        sum(len(w) == 1 for w in words) <= 0.4 * len(words)


def _stems(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.lower())}


def best_answers(evidence: list[Evidence], query: Query) -> list[str]:
    """For each hit's evidence, its best window of 1-3 sentences ("" if it has none)."""
    wanted = {stem(t) for t in query.terms}
    pages = []
    for item in evidence:
        split = _sentences(item.text, item.passages)
        lowest = min(item.cosines, default=0.0)
        dense = [max((item.cosines[j] for j in held), default=lowest) for held in split.holders]
        pages.append(_Page(split.sentences, [s & wanted for s in split.stems], dense,
                           split.words))
    return [_best_window(page, wanted) for page in pages]


@lru_cache(maxsize=PAGES_CACHED)
def _sentences(text: str, passages: tuple[str, ...]) -> _Sentences:
    """The query-independent part of answering from a page, kept for the next query: a server
    answering about the same notes splits each page once."""
    sentences = split_sentences(text)
    held = [letters(passage) for passage in passages]
    holders = []
    for sentence in sentences:
        own = letters(sentence)
        holders.append([j for j, passage in enumerate(held) if own in passage])
    return _Sentences(sentences, [_stems(s) for s in sentences], holders,
                      list(accumulate((len(s.split()) for s in sentences), initial=0)))


def _best_window(page: _Page, wanted: set[str]) -> str:
    """The best-scoring window of `page`, by meaning, query words and length."""
    best: tuple[float, int, int] | None = None
    count = len(page.sentences)
    # A query word in few of the page's sentences tells them apart; one in most does not.
    holding = Counter(t for s in page.stems for t in s)  # page.stems hold only wanted stems
    weight = {t: math.log(1 + count / max(1, holding[t])) for t in wanted}
    total = sum(weight.values())
    for start in range(count):
        found: set[str] = set()
        dense = 0.0
        for end in range(start + 1, min(count, start + MAX_SENTENCES) + 1):
            words = page.words[end] - page.words[start]
            if words > MAX_WORDS and end > start + 1:
                break
            found |= page.stems[end - 1]
            dense += page.dense[end - 1]
            lexical = sum(weight[t] for t in found) / total if found else 0.0
            score = (dense / (end - start) + LEXICAL_WEIGHT * lexical
                     - _length_cost(words, end - start))
            if best is None or score > best[0]:
                best = (score, start, end)
    return "" if best is None else " ".join(page.sentences[best[1]:best[2]])


def _length_cost(words: int, sentences: int) -> float:
    """Each extra sentence costs LONGER_COST, a window under FULL_WORDS words up to
    SHORT_COST; one under MIN_WORDS (a heading, a label) is shown only when nothing else is."""
    if words < MIN_WORDS:
        return 1.0
    return LONGER_COST * (sentences - 1) + SHORT_COST * max(0, FULL_WORDS - words) / FULL_WORDS
