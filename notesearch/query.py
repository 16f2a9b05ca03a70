"""A query, parsed once: what every ranker and the answer step read of the user's words.

The text is normalised here and nowhere else on the way from the CLI (or the web form) to
FAISS and FTS5, so the rankers cannot disagree on what was asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import BadQuery
from .textnorm import normalise, query_for_embedding

_TERM = re.compile(r"[^\W_]+")
STOPWORDS = frozenset("""
a an and are as at be but by can do does did for from had has have how i if in into is it its
me my of on or our so than that the their them then there these they this to was we were what
when where which who why will with would you your should could about get just more most not
also very much many one all any each other some such only own same too s t use used using
""".split())


@dataclass
class Query:
    """One search's words in each form a ranker needs."""

    text: str  # normalised, as typed
    embedding_text: str  # what the embedder reads (see textnorm.query_for_embedding)
    terms: tuple[str, ...]  # distinct content words, lower-cased: lexical and answer evidence

    @classmethod
    def parse(cls, text: str) -> Query:
        """The query, or BadQuery when it holds nothing to look for."""
        text = normalise(text or "").strip()
        if not text:
            raise BadQuery("the query is empty; type what you are looking for")
        if not any(ch.isalnum() for ch in text):
            raise BadQuery(f"the query {text!r} holds no letters or digits; type what you are "
                           "looking for")
        return cls(text, query_for_embedding(text), terms(text))

    def match(self, words: tuple[str, ...] | list[str] | None = None, every: bool = False
              ) -> str | None:
        """The FTS5 expression for these words (default: all terms), matching any of them or,
        with `every`, all: each one quoted, so quotes, stars, minus signs, colons, NEAR and AND
        in a query are just text."""
        chosen = self.terms if words is None else words
        return (" AND " if every else " OR ").join(f'"{w}"' for w in chosen) or None


def terms(text: str) -> tuple[str, ...]:
    """The distinct content words of a text, lower-cased. Stopwords go, unless nothing else
    is left ("to be or not to be")."""
    words = [w.lower() for w in _TERM.findall(normalise(text))]
    content = [w for w in words if w not in STOPWORDS] or words
    return tuple(dict.fromkeys(content))
