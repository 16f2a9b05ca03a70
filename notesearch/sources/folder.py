"""The notes folder as one build (or one page view) sees it: walked at most once."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class NotesFolder:
    """A notes folder, what to leave out of it, and its file listing.

    Hidden files and folders are left out (an Obsidian vault's `.obsidian/`, editors' swap
    files), and so is `skip`: an index kept inside the notes folder, whose figures and rendered
    pages are no notes' images. Symlinked folders are not followed (a loop would never end),
    with a warning; linked files are read. The listing is made on
    first use and kept, so a build that resolves a thousand `![[name.png]]` embeds walks the
    vault once, not a thousand times; a new build (or watcher tick) makes a new folder.
    """

    path: Path
    skip: Path | None = None
    _files: list[tuple[str, Path]] | None = field(default=None, repr=False)
    _by_name: dict[str, list[Path]] | None = field(default=None, repr=False)

    def files(self, warn: Callable[[str], None] = lambda _message: None
              ) -> list[tuple[str, Path]]:
        """Every file in it as (name relative to the folder, path), in a stable order."""
        if self._files is None:
            skip = self.skip.resolve() if self.skip is not None else None
            found = []
            for folder, subfolders, names in os.walk(self.path, onerror=lambda e: warn(str(e))):
                subfolders[:] = sorted(
                    d for d in subfolders if not d.startswith(".")
                    and (skip is None or (Path(folder) / d).resolve() != skip))
                for d in subfolders:  # os.walk lists them, and then leaves them out silently
                    if (Path(folder) / d).is_symlink():
                        relative = (Path(folder) / d).relative_to(self.path).as_posix()
                        warn(f"skipped {relative}/: a linked folder is not followed; move the "
                             "folder itself into the notes folder to index its notes")
                for name in sorted(names):
                    if not name.startswith("."):
                        path = Path(folder) / name
                        found.append((path.relative_to(self.path).as_posix(), path))
            self._files = found
        return self._files

    def named(self, name: str) -> list[Path]:
        """The files called `name` anywhere in the folder, in the order of `files`."""
        if self._by_name is None:
            self._by_name = {}
            for _, path in self.files():
                self._by_name.setdefault(path.name, []).append(path)
        return self._by_name.get(name, [])
