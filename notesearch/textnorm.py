"""Text normalisation shared by indexing and querying, so both sides see the same tokens."""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(?=[a-z])")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# Math typeset by LaTeX or MathJax often extracts one glyph per line; such runs are rejoined
# into one line so they neither split sentences nor flood the chunker with "lines".
_GLYPH_RUN = re.compile(r"(?:^.{1,3}\n+){3,}", re.MULTILINE)
# Six or more one-character words in a row: a word spelt out glyph by glyph ("k e e p _ p r o b").
_LETTER_SPACED = re.compile(r"(?:\b\w\b ){5,}\b\w\b")
# A page is letter-spaced when such runs hold this share of its characters. Two of the five
# course PDFs set code and formulas one glyph at a time: up to a fifth of a page, and none of
# the other authors' notes.
LETTER_SPACED_SHARE = 0.01
_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")
_NOT_ALNUM = re.compile(r"[\W_]+")  # \w is str.isalnum() plus "_"


def normalise(text: str) -> str:
    """NFKC (ligatures "ﬁ" -> "fi"), invisible characters removed, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = "".join(" " if unicodedata.category(ch) == "Co" else ch for ch in text)
    return _SPACES.sub(" ", text)


def clean_page_text(raw: str) -> str:
    """A page's extracted text made readable: words rejoined across line-end hyphens.

    Line breaks survive (headings and bullets sit on their own lines); blank-line runs shrink
    to one.
    """
    text = normalise(raw).replace("\r\n", "\n").replace("\r", "\n")
    text = _HYPHEN_BREAK.sub(r"\1", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text)
    text = _GLYPH_RUN.sub(lambda m: " ".join(m.group(0).split()) + "\n", text)
    return text.strip()


def letter_spaced(text: str) -> bool:
    """Whether a cleaned page spells words out one glyph at a time, as default text extraction
    reads glyphs that a PDF places one by one (Evernote's code blocks): such words match no
    query and blur the page's meaning."""
    spaced = sum(len(run.group(0)) for run in _LETTER_SPACED.finditer(text))
    return spaced >= LETTER_SPACED_SHARE * len(text) > 0


def query_for_embedding(query: str) -> str:
    """The query as the embedder is given it: lower-cased, without the punctuation around it,
    so "ORTHOGONALIZATION?!" and "orthogonalization" find the same pages. Punctuation inside
    stays: in "np.sum(dZ, axis=1)" it is part of the meaning."""
    return _EDGE_PUNCTUATION.sub("", normalise(query).lower()) or query


def letters(text: str) -> str:
    """Only the letters and digits of `text`, NFKC-normalised and lower-cased.

    Comparing letters alone makes an alignment blind to what two extractions of the same text
    disagree on: spaces, line breaks, end-of-line hyphens, ligatures, glyphs split into runs.
    """
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", text).lower())
