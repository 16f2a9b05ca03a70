"""Content hashes of notes files: what tells the build a file changed (not its time stamp)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The SHA-256 of one file, read in blocks so a large PDF is never held whole."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def files_sha256(paths: Iterable[Path]) -> str:
    """One hash over several files in order (a note and the images it embeds change
    together): the SHA-256 of their SHA-256s."""
    return hashlib.sha256(" ".join(file_sha256(p) for p in paths).encode()).hexdigest()
