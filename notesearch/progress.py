"""Progress of long work on stderr: a bar on a terminal, plain lines anywhere else.

A first build runs for minutes. In a CI log, under nohup or cron, or in a pipe, a bar would be
one endless line of carriage returns, and silence looks like a hang; so off a terminal a phase
that runs longer than `INTERVAL` seconds prints a plain line every `INTERVAL` seconds and one
when it ends (short phases, such as embedding one small PDF, stay silent). `--quiet` turns both
off.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

INTERVAL = 5.0  # seconds between two plain progress lines


class Bar(Protocol):
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Bar: ...

    def __exit__(self, *exc: object) -> None: ...


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Lines(_Silent):
    """Plain lines: `notesearch: OCR 40/228 figures (31 s)`."""

    def __init__(self, label: str, total: int, unit: str, stream: TextIO,
                 interval: float) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream, self.interval = stream, interval
        self.done = 0
        self.started = self.said = time.monotonic()
        self.spoken = False

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.said >= self.interval:
            self.said = now
            self._say(f" ({now - self.started:.0f} s)")

    def close(self) -> None:
        if self.spoken:
            self._say(f", done in {time.monotonic() - self.started:.0f} s")

    def __exit__(self, failed: type[BaseException] | None, *exc: object) -> None:
        if failed is None:  # an error or Ctrl-C says its own line: no "done" before it
            self.close()

    def _say(self, tail: str) -> None:
        print(f"notesearch: {self.label} {self.done}/{self.total} {self.unit}{tail}",
              file=self.stream, flush=True)
        self.spoken = True


def bar(label: str, total: int, unit: str, enabled: bool, stream: TextIO | None = None,
        interval: float = INTERVAL) -> Bar:
    """A progress reporter for `total` items of work; use it as a context manager.

    Args:
        label: the phase, as the user reads it ("reading", "embedding", "OCR").
        total: how many items the phase has.
        unit: what an item is, plural ("PDFs", "passages", "figures").
        enabled: False for --quiet (and for work too small to report, such as a query).
        stream: where to write; stderr by default, so stdout stays data.
        interval: the least number of seconds between two plain lines.
    """
    stream = stream or sys.stderr
    if not enabled or total <= 0:
        return _Silent()
    if stream.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=label, unit=unit.rstrip("s"), file=stream, leave=False)
    return _Lines(label, total, unit, stream, interval)
