"""The FAISS side of the index: passage vectors searchable by inner product (= cosine).

The vectors themselves live in SQLite beside their passages; this file is a search structure
rebuilt from them at each build, so it can never disagree with the passages it points to.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

# Below this many passages an exact flat scan takes a few milliseconds and is never wrong;
# above it, HNSW keeps queries in the low milliseconds at a small recall cost.
EXACT_LIMIT = 50_000
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 128


def build(dim: int, count: int, batches: Iterable[tuple[np.ndarray, np.ndarray]]):
    """A FAISS index over `count` vectors fed as (ids, vectors) batches."""
    import faiss

    if count <= EXACT_LIMIT:
        inner = faiss.IndexFlatIP(dim)
    else:
        inner = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = 80
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    index = faiss.IndexIDMap2(inner)
    for ids, vectors in batches:
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                           np.asarray(ids, dtype=np.int64))
    return index


def save(index, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def load(path: Path):
    """Open an index for querying: one query at a time, so one thread (OpenMP threads only
    add start-up and contention to a millisecond scan)."""
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.read_index(str(path))
    hnsw = getattr(faiss.downcast_index(index.index), "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = HNSW_EF_SEARCH
    return index


def search(index, query: np.ndarray, k: int, only: np.ndarray | None = None
           ) -> list[tuple[int, float]]:
    """The k nearest passage ids with their cosine similarity, best first.

    `only` restricts the search to these passage ids (a course filter) inside FAISS, so a
    filter never starves the result list the way filtering afterwards would.
    """
    import faiss

    if index.ntotal == 0 or (only is not None and not len(only)):
        return []
    params = None if only is None else faiss.SearchParameters(
        sel=faiss.IDSelectorBatch(np.ascontiguousarray(only, dtype=np.int64)))
    scores, ids = index.search(query.reshape(1, -1).astype(np.float32), min(k, index.ntotal),
                               params=params)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
