"""Recognise which Deep Learning Specialization course a notes file belongs to.

Learners name their exports freely ("Course 5 - Sequence Models.pdf", "adeboye-c1-nn-dl.pdf",
"Convolutional Neural Network.pdf"), so the file name is matched on course numbers first and
distinctive title words second.
"""

from __future__ import annotations

import re

COURSES: dict[int, str] = {
    1: "Neural Networks and Deep Learning",
    2: "Improving Deep Neural Networks",
    3: "Structuring Machine Learning Projects",
    4: "Convolutional Neural Networks",
    5: "Sequence Models",
}

_NUMBERED = re.compile(r"(?:\bcourse[\s_-]*|(?<![a-z0-9])c)([1-5])(?![0-9])")
_ALONE = r"(?<![a-z0-9]){}(?![a-z0-9])"  # a word on its own; "_" separates ("CNN_Notes")
_KEYWORDS: list[tuple[int, re.Pattern[str]]] = [
    (5, re.compile(r"sequence|recurrent|" + _ALONE.format("rnn"))),
    (4, re.compile(r"convolution|" + _ALONE.format("cnn"))),
    (3, re.compile(r"structuring")),
    (2, re.compile(r"improving|hyperparameter|regulari[sz]ation")),
    (1, re.compile(r"neural[\s_-]*networks?[\s_-]*(?:and|&)[\s_-]*deep[\s_-]*learning|nn[\s_-]dl")),
]


def recognise_course(file_name: str) -> int | None:
    """Return the course number (1-5) a file name points to, or None."""
    stem = re.sub(r"\.[a-z]{2,8}$", "", file_name.lower())  # the suffix: .pdf, .md
    numbered = _NUMBERED.search(stem)
    if numbered:
        return int(numbered.group(1))
    for number, pattern in _KEYWORDS:
        if pattern.search(stem):
            return number
    return None


def parse_course(text: str) -> int | None:
    """A course as a user names it: 1-5 ("C2" too), a word of its name ("sequence", "cnn",
    "improving"), or "all" (None). ValueError, saying what is accepted, for anything else."""
    wanted = text.strip().lower()
    if wanted in ("", "all"):
        return None
    if re.fullmatch(r"c?[1-5]", wanted):
        return int(wanted[-1])
    word = re.compile(rf"\b{re.escape(wanted)}")
    named = {n for n, title in COURSES.items() if word.search(title.lower())}
    if len(named) == 1:
        return named.pop()
    if named:
        raise ValueError(f"{text!r} names courses {', '.join(map(str, sorted(named)))}: give "
                         f"one number (1-5) or a word only one course's name has")
    recognised = recognise_course(wanted)
    if recognised is not None:
        return recognised
    raise ValueError(f"course must be one of 1-5, a word of a course's name (e.g. sequence, "
                     f"convolutional, structuring) or all, not {text!r}")


def course_label(course: int | None, title: str) -> str:
    """How a citation names a document's course: "C2 Improving Deep Neural Networks"."""
    return f"C{course} {COURSES[course]}" if course else title
