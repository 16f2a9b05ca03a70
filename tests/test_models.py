"""The model export: made once per machine in the user cache, reused by every index without
PyTorch, kept in the index folder when the cache is read-only; and length-sorted embedding."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_pdf

from notesearch import NoteIndex
from notesearch.embed import DEFAULT_MODEL, OnnxEmbedder, optimised_name
from notesearch.layout import IndexDir
from notesearch.models import build_embedder, model_key, user_cache

KEY = model_key(DEFAULT_MODEL)


def small_notes(folder: Path) -> Path:
    make_pdf(folder / "a.pdf", ["Momentum averages the gradient descent steps.",
                                "Dropout switches off random units while training."])
    return folder


def build_in_child(notes: Path, index: Path, env: dict[str, str]) -> list[str]:
    """Build in a fresh process; the heavy modules it imported."""
    code = (
        "import sys, json\nfrom notesearch import NoteIndex\n"
        f"NoteIndex.build({str(notes)!r}, {str(index)!r}, ocr=False)\n"
        "print(json.dumps([m for m in ('torch', 'sentence_transformers') if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, **env}).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_export_lands_in_the_cache_and_a_second_index_reuses_it(onnx_models, tmp_path):
    folder = onnx_models / KEY
    assert OnnxEmbedder.available(folder) and (folder / optimised_name()).exists()
    assert user_cache() / "models" == onnx_models
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    notes = small_notes(tmp_path / "notes")
    for name in ("one", "two"):
        assert build_in_child(notes, tmp_path / name, {}) == []
        assert not (tmp_path / name / "models").exists()
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    with NoteIndex.open(tmp_path / "two") as index:
        assert index.status()["fast_query_path"]
        assert index.search("dropout", k=1)[0].file == "a.pdf"


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTESEARCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache() == tmp_path / "xdg" / "notesearch"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache() == tmp_path / "home" / ".cache" / "notesearch"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_a_read_only_cache_falls_back_to_the_index_folder(onnx_models, tmp_path, monkeypatch):
    cache = tmp_path / "read-only-cache"
    cache.mkdir(mode=0o500)
    monkeypatch.setenv("NOTESEARCH_CACHE", str(cache))
    try:
        embedder = build_embedder(DEFAULT_MODEL, IndexDir(tmp_path / "index"))
    finally:
        cache.chmod(0o700)
    assert isinstance(embedder, OnnxEmbedder)
    assert OnnxEmbedder.available(tmp_path / "index" / "models" / KEY)
    assert list(cache.iterdir()) == []


def test_a_file_in_place_of_the_cache_falls_back_to_the_index_folder(onnx_models, tmp_path,
                                                                      monkeypatch):
    """A cache path that cannot be a folder (as a read-only home is for root, too)."""
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("NOTESEARCH_CACHE", str(tmp_path / "not-a-folder"))
    assert isinstance(build_embedder(DEFAULT_MODEL, IndexDir(tmp_path / "index")), OnnxEmbedder)
    assert OnnxEmbedder.available(tmp_path / "index" / "models" / KEY)


def test_an_older_index_with_its_own_export_searches_without_pytorch(onnx_models, tmp_path):
    """An index built before the shared cache kept the export in index/models/: still used."""
    notes = small_notes(tmp_path / "notes")
    NoteIndex.build(notes, tmp_path / "index", ocr=False)
    legacy = tmp_path / "index" / "models" / KEY
    shutil.copytree(onnx_models / KEY, legacy)
    for optimised in legacy.glob("model.opt-*"):
        optimised.unlink()  # as exported before optimised models
    code = (
        "import sys, json\nfrom notesearch import NoteIndex\n"
        f"with NoteIndex.open({str(tmp_path / 'index')!r}) as index:\n"
        "    hit = index.search('dropout', k=1)[0]\n"
        "    print(json.dumps([hit.file, type(index.embedder).__name__, 'torch' in sys.modules]))\n"
    )
    env = {**os.environ, "NOTESEARCH_CACHE": str(tmp_path / "empty-cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert json.loads(out.strip().splitlines()[-1]) == ["a.pdf", "OnnxEmbedder", False]


def test_length_sorted_batches_return_vectors_in_the_callers_order(onnx_models):
    embedder = OnnxEmbedder(DEFAULT_MODEL, onnx_models / KEY)
    texts = [("word " * n).strip() + f" number {n}" for n in (90, 3, 40, 1, 200, 7, 60, 2)] * 9
    together = embedder.encode(texts)
    one_by_one = np.vstack([embedder.encode([t]) for t in texts])
    assert together.shape == (len(texts), embedder.dim)
    assert np.allclose(together, one_by_one, atol=1e-5)
    assert embedder.encode([]).shape == (0, embedder.dim)
