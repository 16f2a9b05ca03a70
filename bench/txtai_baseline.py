"""The txtai baseline of bench/speed.py: a hybrid txtai index of the same passages, same model.

    python bench/txtai_baseline.py build NOTES_DIR INDEX_DIR      # text only, like --no-ocr
    python bench/txtai_baseline.py search INDEX_DIR "query" [-k 5]

The passages are notesearch's own page windows (same PDF text extraction, same chunker, same
heading-prefixed text), so the two engines differ only in how they embed, store and search.
txtai embeds with sentence-transformers (PyTorch) from the packaged all-MiniLM-L6-v2 folder,
keeps the passages in its SQLite content store, and ranks hybrid (dense FAISS + BM25 scoring,
txtai's default 0.5/0.5 weights). A passage id carries its file and pages, so a hit is cited like
a notesearch hit. Needs the optional extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def model_folder() -> str:
    """The packaged all-MiniLM-L6-v2 folder notesearch itself exports from."""
    from notesearch.embed import DEFAULT_MODEL, model_location

    return model_location(DEFAULT_MODEL)


def passages(notes_dir: Path) -> Iterator[tuple[str, str]]:
    """(id, text) of every passage notesearch would embed from the PDFs' text layer."""
    from notesearch.chunk import chunk_pages
    from notesearch.extract import iter_pages, open_pdf

    for pdf in sorted(p for p in notes_dir.rglob("*.pdf") if p.is_file()):
        name = pdf.relative_to(notes_dir).as_posix()
        pages = [page for page, _ in iter_pages(open_pdf(pdf), pdf, lambda _message: None)]
        for n, chunk in enumerate(chunk_pages(pages)):
            yield f"{name}#{chunk.page}-{chunk.page_end}#{n}", chunk.embedded_text


def new_embeddings():
    from txtai import Embeddings

    return Embeddings(path=model_folder(), method="sentence-transformers", content=True,
                      hybrid=True, backend="faiss")


def build(notes_dir: Path, index_dir: Path) -> int:
    """Index the notes into `index_dir`; returns the number of passages."""
    embeddings = new_embeddings()
    rows = list(passages(notes_dir))
    embeddings.index([(pid, text, None) for pid, text in rows])
    embeddings.save(str(index_dir))
    return len(rows)


def load(index_dir: Path):
    from txtai import Embeddings

    embeddings = Embeddings()
    embeddings.load(str(index_dir))
    return embeddings


def search(embeddings, query: str, k: int = 5) -> list[tuple[str, int, int, float]]:
    """The k best pages (file, first page, last page, score), each page once."""
    hits: list[tuple[str, int, int, float]] = []
    seen: set[tuple[str, int]] = set()
    for row in embeddings.search(query, limit=k * 4):
        name, pages, _ = row["id"].rsplit("#", 2)
        first, last = (int(p) for p in pages.split("-"))
        if (name, first) not in seen:
            seen.add((name, first))
            hits.append((name, first, last, float(row["score"])))
    return hits[:k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build")
    build_cmd.add_argument("notes_dir", type=Path)
    build_cmd.add_argument("index_dir", type=Path)
    search_cmd = commands.add_parser("search")
    search_cmd.add_argument("index_dir", type=Path)
    search_cmd.add_argument("query")
    search_cmd.add_argument("-k", type=int, default=5)
    args = parser.parse_args()
    if args.command == "build":
        print(f"{build(args.notes_dir, args.index_dir)} passages")
        return
    for rank, (name, first, last, score) in enumerate(
            search(load(args.index_dir), args.query, args.k), start=1):
        pages = f"p. {first}" if first == last else f"pp. {first}-{last}"
        print(f"{rank}. {score:.3f} {name}, {pages}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
