"""Counts as messages say them: "1 note", "2 notes"."""

from __future__ import annotations


def counted(number: int, noun: str) -> str:
    """`number` and its noun, singular for 1 (the summary said "embedded 1 passages")."""
    return f"{number} {noun if number == 1 else noun + 's'}"
