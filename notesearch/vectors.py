"""The FAISS side of the index: passage vectors searchable by inner product (= cosine).

The vectors themselves live in SQLite beside their passages; this file is a search structure
rebuilt from them at each build, so it can never disagree with the passages it points to.

An exact (flat) index is read without FAISS: importing FAISS costs a cold search about 100 ms of
CPU, more than the whole scan of a few thousand vectors, so `load` reads FAISS's own file layout
for that one index type (`FlatVectors`) and leaves every other file to FAISS.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:
    import faiss

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


class FlatVectors:
    """An exact inner-product index held in numpy: the part of FAISS's interface the index uses
    (`ntotal`, `reconstruct`), and `search` below."""

    def __init__(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        order = np.argsort(ids, kind="stable")
        self.ids = np.ascontiguousarray(ids[order])
        self.vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)

    @property
    def ntotal(self) -> int:
        return len(self.ids)

    def reconstruct(self, key: int) -> np.ndarray:
        row = int(np.searchsorted(self.ids, key))
        if row == len(self.ids) or self.ids[row] != key:
            raise RuntimeError(f"no vector with id {key}")  # what FAISS raises
        return self.vectors[row]

    def reconstruct_many(self, keys: list[int]) -> np.ndarray:
        wanted = np.asarray(keys, dtype=np.int64)
        rows = np.searchsorted(self.ids, wanted)
        if len(wanted) and (rows.max() >= len(self.ids) or (self.ids[rows] != wanted).any()):
            raise RuntimeError("no vector with some of these ids")  # what FAISS raises
        return self.vectors[rows]

    def search(self, query: np.ndarray, k: int, only: np.ndarray | None
               ) -> list[tuple[int, float]]:
        rows = None if only is None else np.flatnonzero(np.isin(self.ids, only))
        matrix = self.vectors if rows is None else self.vectors[rows]
        ids = self.ids if rows is None else self.ids[rows]
        # einsum, not `@`: BLAS sums some rows in another order than others, so two passages
        # with the same vector could score an ulp apart; einsum scores equal rows equally.
        scores = np.einsum("ij,j->i", matrix, np.asarray(query, dtype=np.float32).reshape(-1))
        k = min(k, len(scores))
        if k == 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(k)
        # Best first; equal scores (passages with the same vector) in a fixed order, by id
        # descending (FAISS's heap returns such ties in an order of its own).
        best = best[np.lexsort((-ids[best], -scores[best]))]
        return [(int(ids[i]), float(scores[i])) for i in best]


# FAISS's serialisation of IndexIDMap2 over IndexFlatIP (faiss/impl/index_write.cpp): each index
# is a fourcc then a header (d, ntotal, two unused int64, is_trained, metric type); the flat
# index's vectors follow as a count of floats and the floats, then the id map as a count and
# int64 ids. Inner product is metric type 0.
_HEADER = struct.Struct("<iqqq?i")
_COUNT = struct.Struct("<Q")


def _read_flat(path: Path) -> FlatVectors | None:
    """The file as FlatVectors if it is exactly a flat inner-product index with ids, else None
    (another index type, another layout, or a damaged file: FAISS decides what it is)."""
    with path.open("rb") as handle:
        data = handle.read(8 + _HEADER.size)
        if data[:4] != b"IxM2" or data[-4:] != b"IxFI":  # e.g. HNSW: not read twice
            return None
        data += handle.read()
    offset = 0
    for fourcc in (b"IxM2", b"IxFI"):
        if data[offset:offset + 4] != fourcc or len(data) < offset + 4 + _HEADER.size:
            return None
        dim, total, _, _, _, metric = _HEADER.unpack_from(data, offset + 4)
        if metric != 0 or dim <= 0 or total < 0:
            return None
        offset += 4 + _HEADER.size
    floats_at = offset + _COUNT.size
    ids_at = floats_at + total * dim * 4 + _COUNT.size
    if (len(data) != ids_at + total * 8 or _COUNT.unpack_from(data, offset)[0] != total * dim
            or _COUNT.unpack_from(data, ids_at - _COUNT.size)[0] != total):
        return None
    vectors = np.frombuffer(data, dtype="<f4", count=total * dim, offset=floats_at)
    ids = np.frombuffer(data, dtype="<i8", count=total, offset=ids_at)
    return FlatVectors(vectors.reshape(total, dim), ids)


def load(path: Path):
    """Open an index for querying: `FlatVectors` for an exact index, else FAISS with one thread
    (one query at a time: OpenMP threads only add start-up and contention)."""
    flat = _read_flat(path)
    if flat is not None:
        return flat
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.read_index(str(path))
    hnsw = getattr(faiss.downcast_index(index.index), "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = HNSW_EF_SEARCH
    return index


Vectors = Union["FlatVectors", "faiss.Index"]  # what `load` returns; both answer `ntotal`


def reconstruct(index, ids: list[int]) -> np.ndarray:
    """The stored vectors of these passage ids, one row each, in order (FlatVectors gathers
    them in one step: a warm search asks for a few hundred)."""
    if isinstance(index, FlatVectors):
        return index.reconstruct_many(ids)
    return np.vstack([index.reconstruct(i) for i in ids])


def search(index, query: np.ndarray, k: int, only: np.ndarray | None = None
           ) -> list[tuple[int, float]]:
    """The k nearest passage ids with their cosine similarity, best first.

    `only` restricts the search to these passage ids (a course filter) inside FAISS, so a
    filter never starves the result list the way filtering afterwards would.
    """
    if index.ntotal == 0 or (only is not None and not len(only)):
        return []
    if isinstance(index, FlatVectors):
        return index.search(query, k, only)
    import faiss

    params = None if only is None else faiss.SearchParameters(
        sel=faiss.IDSelectorBatch(np.ascontiguousarray(only, dtype=np.int64)))
    scores, ids = index.search(query.reshape(1, -1).astype(np.float32), min(k, index.ntotal),
                               params=params)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
