"""Embedding costs, before and after the pre-optimised model, length-sorted batches and OpenVINO.

Prints ONNX session creation (fresh processes, median of 7), build throughput in passages/s on
the real passages of the notes (notesearch's own extractor and chunker) for the old path,
today's onnxruntime path (queries) and the build's OpenVINO embedder, and the time to embed one
short query. "old" re-runs the previous code path in the same process and run: `model.onnx`
optimised at load, onnxruntime's default threads, batches of 32 in passage order padded to
their longest passage.

    .venv/bin/python bench/embed.py [NOTES_DIR]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from notesearch.chunk import chunk_pages
from notesearch.embed import DEFAULT_MODEL, OnnxEmbedder, optimised_name
from notesearch.extract import iter_pages, open_pdf
from notesearch.layout import IndexDir
from notesearch.models import build_embedder, find_export

SESSION = """
import sys, time, onnxruntime
options = onnxruntime.SessionOptions()
options.log_severity_level = 3
options.intra_op_num_threads = 1
if sys.argv[2] == "new":
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
started = time.perf_counter()
onnxruntime.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
print((time.perf_counter() - started) * 1000)
"""


def passages(notes: Path) -> list[str]:
    texts = []
    for pdf in sorted(notes.glob("*.pdf")):
        pages = [page for page, _ in iter_pages(open_pdf(pdf), pdf, lambda message: None)]
        texts += [chunk.embedded_text for chunk in chunk_pages(pages)]
    return texts


def token_lengths(folder: Path, texts: list[str]) -> tuple[np.ndarray, int]:
    """Each passage's length in model tokens before truncation, and the model's limit: passages
    cut to the same limit gain nothing from length-sorted batches."""
    import json

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    limit = json.loads((folder / "pooling.json").read_text())["max_seq_length"]
    return np.array([len(e.ids) for e in tokenizer.encode_batch(texts)]), limit


def session_ms(model: Path, kind: str, runs: int = 7) -> float:
    return statistics.median(
        float(subprocess.run([sys.executable, "-c", SESSION, str(model), kind], check=True,
                             capture_output=True, text=True).stdout)
        for _ in range(runs))


class OldEmbedder:
    """The previous OnnxEmbedder.encode: unsorted batches of 32, default session options."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(256)
        self.tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                                    providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), 32):
            encodings = self.tokenizer.encode_batch(texts[start:start + 32])
            feeds = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            hidden = self.session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            parts.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.vstack(parts)


def rate(encode, texts: list[str]) -> tuple[float, float, np.ndarray]:
    """Passages per wall second and per CPU second (the machine is shared)."""
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = encode(texts)
    return (len(texts) / (time.perf_counter() - wall), len(texts) / (time.process_time() - cpu),
            vectors)


def main() -> None:
    notes = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/notes")
    folder = find_export(DEFAULT_MODEL, IndexDir(Path("index")))
    if folder is None:
        build_embedder(DEFAULT_MODEL, IndexDir(Path("index")))
        folder = find_export(DEFAULT_MODEL, IndexDir(Path("index")))
    old_ms = session_ms(folder / "model.onnx", "old")
    new_ms = session_ms(folder / optimised_name(), "new")
    print(f"session creation   old {old_ms:6.0f} ms   new {new_ms:6.0f} ms   "
          f"({old_ms / new_ms:.1f}x, median of 7 fresh processes)")
    texts = passages(notes)
    lengths, limit = token_lengths(folder, texts)
    print(f"passage tokens     median {np.median(lengths):.0f}, min {lengths.min()}, "
          f"max {lengths.max()}; {(lengths >= limit).sum()} of {len(texts)} cut to the model's "
          f"{limit}")
    old_wall, old_cpu, old_vectors = rate(OldEmbedder(folder).encode, texts)
    print(f"passages/s, {len(texts)} passages; ratios to old; cosine: the lowest of any "
          "passage to old")
    print(f"  {'old (onnxruntime, unsorted)':34s} {old_wall:6.1f}/s wall  "
          f"{old_cpu:6.1f}/CPU-s")
    for label, embedder in (("onnxruntime, length-sorted", OnnxEmbedder(DEFAULT_MODEL, folder)),
                            ("openvino (the build's embedder)", build_embedder(
                                DEFAULT_MODEL, IndexDir(Path("index"))))):
        wall, cpu, vectors = rate(embedder.encode, texts)
        cosine = float((old_vectors * vectors).sum(axis=1).min())
        print(f"  {label:34s} {wall:6.1f}/s wall  {cpu:6.1f}/CPU-s  {wall / old_wall:.2f}x wall  "
              f"{cpu / old_cpu:.2f}x CPU  cosine {cosine:.5f}")
    query = OnnxEmbedder(DEFAULT_MODEL, folder, threads=1)
    query.encode(["warm up"])
    times = []
    for _ in range(50):
        started = time.perf_counter()
        query.encode(["dropout regularization"])
        times.append((time.perf_counter() - started) * 1000)
    print(f"query embedding    {statistics.median(times):.1f} ms median of 50 (one short query, "
          "1 thread)")


if __name__ == "__main__":
    main()
