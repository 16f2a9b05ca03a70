"""Shared fixtures: the real notes, a real index built once per session, generated PDFs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
NOTES = SHARED / "notes"
MORE_NOTES = SHARED / "more-notes"
DEV_QUERIES = SHARED / "eval" / "dev.jsonl"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests read the real notes beside the project")
    return path


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory) -> Iterator[Path]:
    """One user cache for the whole session (set before any session fixture builds an index),
    so the model is exported once and ~/.cache is never touched."""
    cache = tmp_path_factory.mktemp("user-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NOTESEARCH_CACHE", str(cache))
        yield cache


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path, _model_cache):
    """No test reads or writes ./index, ~ or the user's environment by accident."""
    monkeypatch.setenv("NOTESEARCH_INDEX", str(tmp_path / "default-index"))
    monkeypatch.setenv("NOTESEARCH_CACHE", str(_model_cache))


@pytest.fixture(scope="session")
def notes_dir() -> Path:
    return need(NOTES)


@pytest.fixture(scope="session")
def dev_queries() -> Path:
    return need(DEV_QUERIES)


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, notes_dir, onnx_models) -> Path:
    """The five course notes indexed without OCR (fast); never modified by tests."""
    from notesearch import NoteIndex

    index_dir = seeded_index(onnx_models, tmp_path_factory.mktemp("shared-index") / "index")
    NoteIndex.build(notes_dir, index_dir, ocr=False)
    return index_dir


@pytest.fixture(scope="session")
def onnx_models(_model_cache) -> Path:
    """The session cache's `models/` folder, holding the default model's ONNX export."""
    from notesearch.embed import DEFAULT_MODEL
    from notesearch.layout import IndexDir
    from notesearch.models import build_embedder

    build_embedder(DEFAULT_MODEL, IndexDir(_model_cache / "unused-index"))
    return _model_cache / "models"


def seeded_index(onnx_models: Path, index_dir: Path) -> Path:
    """An index folder whose builds find the exported model (it is in the session cache)."""
    return index_dir


@pytest.fixture
def index_copy(built_index, tmp_path) -> Path:
    """A private copy of the session index, for tests that change it."""
    target = tmp_path / "index"
    shutil.copytree(built_index, target, symlinks=True)
    return target


def make_pdf(path: Path, pages: list[str], images: dict[int, Path] | None = None) -> Path:
    """Write a small real PDF: one string of text per page, optional image per page index."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for number, text in enumerate(pages):
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
        if images and number in images:
            pdf.image(str(images[number]), x=10, y=120, w=180)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def text_image(path: Path, lines: list[str], size: tuple[int, int] = (900, 300)) -> Path:
    """A PNG of printed text, as a slide screenshot would be."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=40)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for n, line in enumerate(lines):
        draw.text((30, 30 + 60 * n), line, fill="black", font=font)
    image.save(path)
    return path


def make_older_format(database: Path) -> None:
    """Turn an index database back into the first format (m001 only), as an older notesearch
    left it, to test upgrading."""
    import sqlite3

    db = sqlite3.connect(database)
    db.executescript("""
        DROP TABLE pages_fts;
        DROP TRIGGER pages_ai; DROP TRIGGER pages_ad;
        DROP TRIGGER figure_text_ai; DROP TRIGGER figure_text_ad;
        ALTER TABLE pages DROP COLUMN source; DROP TABLE page_lines;
        ALTER TABLE documents DROP COLUMN format;
        ALTER TABLE pages DROP COLUMN section; ALTER TABLE pages DROP COLUMN line;
        DELETE FROM _migrations WHERE name != 'm001_initial';
    """)
    db.close()
