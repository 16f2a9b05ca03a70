"""The FAISS-free reader of exact indexes answers exactly as FAISS does, and leaves every other
file (HNSW, damaged) to FAISS."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from notesearch import vectors


def unit_rows(count: int, dim: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def saved(tmp_path: Path, rows: np.ndarray, ids: np.ndarray) -> Path:
    path = tmp_path / "vectors.faiss"
    vectors.save(vectors.build(rows.shape[1], len(rows), [(ids, rows)]), path)
    return path


def assert_same_ranking(ours: list[tuple[int, float]], theirs: list[tuple[int, float]]) -> None:
    """Same scores in the same order, and the same passages for each score; passages with equal
    vectors (a tie) may come in any order, and a tie cut by k may keep any of its members."""
    assert np.allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)

    def groups(hits):
        runs: list[set[int]] = []
        for n, (key, score) in enumerate(hits):
            if n and abs(score - hits[n - 1][1]) < 1e-5:
                runs[-1].add(key)
            else:
                runs.append({key})
        return runs

    assert groups(ours)[:-1] == groups(theirs)[:-1]


@pytest.mark.parametrize("count", [0, 1, 7, 500])
def test_flat_file_searches_like_faiss(tmp_path, count):
    rows = unit_rows(count, 48, seed=count)
    if count:
        rows[count // 2::5] = rows[0]  # passages with the same text tie
    ids = np.random.default_rng(1).permutation(np.arange(1, 3 * count + 2))[:count].astype(np.int64)
    path = saved(tmp_path, rows, ids)
    flat = vectors.load(path)
    assert isinstance(flat, vectors.FlatVectors) and flat.ntotal == count
    reference = faiss.read_index(str(path))
    for seed in range(5):
        query = unit_rows(1, 48, seed=100 + seed)[0]
        for only in (None, ids[::3], ids[:0]):
            for k in (1, 10, count + 5):
                ours = vectors.search(flat, query, k, only)
                params = None if only is None else faiss.SearchParameters(
                    sel=faiss.IDSelectorBatch(only))
                if count == 0 or (only is not None and not len(only)):
                    assert ours == []
                    continue
                scores, found = reference.search(query.reshape(1, -1), min(k, count),
                                                 params=params)
                theirs = [(int(i), float(s)) for i, s in zip(found[0], scores[0], strict=True)
                          if i >= 0]
                assert_same_ranking(ours, theirs)
    for key in ids[:20]:
        assert np.array_equal(flat.reconstruct(int(key)), reference.reconstruct(int(key)))
    with pytest.raises(RuntimeError):
        flat.reconstruct(10**9)
    some = [int(key) for key in ids[::-4]]
    if some:
        assert np.array_equal(vectors.reconstruct(flat, some),
                              vectors.reconstruct(reference, some))
    for missing in ([10**9], [*some, 10**9], [-1]):
        with pytest.raises(RuntimeError):
            vectors.reconstruct(flat, missing)


def test_other_index_types_and_damaged_files_go_to_faiss(tmp_path):
    rows = unit_rows(50, 16, seed=3)
    hnsw = faiss.IndexIDMap2(faiss.IndexHNSWFlat(16, 8, faiss.METRIC_INNER_PRODUCT))
    hnsw.add_with_ids(rows, np.arange(50, dtype=np.int64))
    faiss.write_index(hnsw, str(tmp_path / "hnsw.faiss"))
    loaded = vectors.load(tmp_path / "hnsw.faiss")
    assert not isinstance(loaded, vectors.FlatVectors) and loaded.ntotal == 50
    assert vectors.search(loaded, rows[4], 1)[0][0] == 4

    l2 = faiss.IndexIDMap2(faiss.IndexFlatL2(16))
    l2.add_with_ids(rows, np.arange(50, dtype=np.int64))
    faiss.write_index(l2, str(tmp_path / "l2.faiss"))
    assert not isinstance(vectors.load(tmp_path / "l2.faiss"), vectors.FlatVectors)

    good = saved(tmp_path, rows, np.arange(50, dtype=np.int64)).read_bytes()
    for damaged in (b"\0" * 1000, good[:-8], good[:100]):  # cut short or overwritten
        (tmp_path / "bad.faiss").write_bytes(damaged)
        with pytest.raises(RuntimeError):
            vectors.load(tmp_path / "bad.faiss")
