"""Where a model's ONNX export lives: made once per machine and model, shared by every index.

    $NOTESEARCH_CACHE, else $XDG_CACHE_HOME/notesearch, else ~/.cache/notesearch
      models/<model_key>/   model.onnx, its pre-optimised copy, tokenizer.json, pooling.json

Exporting loads PyTorch and takes about 15 s and 90 MB per copy, so no index keeps its own copy,
unless the user cache cannot be written (a read-only home): then the export goes to the index
folder's `models/`, which is also where indexes built before the shared cache kept it.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Literal

from .embed import (
    QUERY_THREADS,
    Embedder,
    OnnxEmbedder,
    OpenVinoEmbedder,
    TorchEmbedder,
    optimised_name,
    save_optimised,
)
from .layout import IndexDir

CACHE_ENV = "NOTESEARCH_CACHE"


def model_key(name: str) -> str:
    """Folder name of a model's ONNX export: readable, and unique per model name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).name or name)[:40]
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def user_cache() -> Path:
    """The per-user cache folder notesearch shares between indexes."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "notesearch"


def export_folders(model_name: str, index_dir: IndexDir) -> list[Path]:
    """Where an export of `model_name` may be, in the order they are tried."""
    key = model_key(model_name)
    return [user_cache() / "models" / key, index_dir.models_dir / key]


def find_export(model_name: str, index_dir: IndexDir) -> Path | None:
    """The folder holding a complete export of `model_name`, or None."""
    return next((f for f in export_folders(model_name, index_dir) if OnnxEmbedder.available(f)),
                None)


Queries = Literal["one", "serial", "concurrent"]


def query_embedder(model_name: str, index_dir: IndexDir, queries: Queries = "serial"
                   ) -> Embedder:
    """The fast ONNX embedder if the model was exported, else sentence-transformers, noticed.

    `queries`: how the caller searches, which decides the model's set-up (measured on the dev
    questions, 2 cores): "one" query and exit (the CLI: one thread, no prepacking, see
    OnnxEmbedder), "serial" queries one after another (the API: two threads, 3.4-4.0 ms a
    query instead of 5.9-6.0), or "concurrent" requests (the web app: one thread each; two
    made 8 concurrent clients 35% slower, p95 93 -> 174 ms)."""
    folder = find_export(model_name, index_dir)
    if folder is not None:
        return OnnxEmbedder(model_name, folder,
                            threads=QUERY_THREADS if queries == "serial" else 1,
                            prepack=queries != "one")
    print(f"notice: no fast query model in {export_folders(model_name, index_dir)[0]}; loading "
          f"{model_name} with sentence-transformers (slower; `notesearch index` adds the fast "
          "model)", file=sys.stderr)
    return TorchEmbedder(model_name)


def build_embedder(model_name: str, index_dir: IndexDir) -> Embedder:
    """The export run by OpenVINO when the model exports (faster, the same vectors within
    cosine 0.9999), else sentence-transformers.

    Exports on first use; an export without this onnxruntime's optimised model gains one, for
    the searches that follow.
    """
    folder = find_export(model_name, index_dir)
    if folder is None:
        torch_embedder = TorchEmbedder(model_name)
        folder = _export(torch_embedder, export_folders(model_name, index_dir))
        if folder is None:
            return torch_embedder
    elif not (folder / optimised_name()).exists():
        try:
            save_optimised(folder)
        except OSError:  # a read-only older export still works, only its sessions start slower
            pass
    model = folder / "model.onnx"
    return _compiled(model_name, folder, model.stat().st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _compiled(model_name: str, folder: Path, modified: int) -> OpenVinoEmbedder:
    """One OpenVINO embedder per export for the whole process, freed at exit.

    A process that builds again and again (`index --watch`, the API, the test suite) then
    compiles the model once instead of every build (about 0.5 s). It also frees it once: two
    of six fresh-clone test runs died in native code just where a build's embedder was freed.
    `modified` makes a re-exported model compile anew.
    """
    return OpenVinoEmbedder(model_name, folder)


atexit.register(_compiled.cache_clear)  # while the modules it needs are still loaded


def _export(torch_embedder: TorchEmbedder, targets: list[Path]) -> Path | None:
    """Export into the first writable target; None if the model cannot be exported."""
    for target in targets:
        try:
            return target if _publish(torch_embedder, target) else None
        except OSError:
            if target == targets[-1]:
                raise
    return None


def _publish(torch_embedder: TorchEmbedder, target: Path) -> bool:
    """Export into a temporary folder beside `target`, then rename it into place.

    Two builds exporting at once both finish: the first rename wins, the loser's identical
    copy is dropped.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        if not torch_embedder.export_onnx(temp):
            return False
        try:
            temp.rename(target)
        except OSError:
            if not OnnxEmbedder.available(target):
                raise
        return True
    finally:
        shutil.rmtree(temp, ignore_errors=True)
