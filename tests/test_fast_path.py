"""The fast query path: ONNX Runtime gives sentence-transformers' vectors without PyTorch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from notesearch import NoteIndex
from notesearch.embed import DEFAULT_MODEL, TorchEmbedder
from notesearch.evaluate import load_queries
from notesearch.models import query_embedder

QUERIES = [
    "dropout", "What is batch normalization?", "why initialise weights randomly",
    "Bayes error vs human-level performance", "np.sum(dZ, axis=1, keepdims=True)",
    "LSTM forget gate", "GRU", "vanishing / exploding gradients in very deep nets",
    "how to split train dev test when you have 1,000,000 examples", "ReLU vs sigmoid vs tanh",
    "Adam = momentum + RMSprop", "learning-rate decay schedules", "1x1 convolutions",
    "ResNet skip connections", "Inception network", "YOLO bounding boxes", "non-max suppression",
    "anchor boxes", "face verification triplet loss", "neural style transfer cost function",
    "word2vec skip-gram", "GloVe", "negative sampling", "beam search length normalization",
    "BLEU score", "attention model", "speech recognition CTC", "trigger word detection",
    "sentiment classification", "debiasing word embeddings", "softmax regression",
    "hyperparameter search on a log scale", "pandas vs caviar", "orthogonalization",
    "single number evaluation metric", "satisficing and optimizing metrics",
    "error analysis spreadsheet", "mislabeled examples", "data mismatch", "transfer learning",
    "multi-task learning", "end-to-end deep learning", "ε = 10^-8 in Adam",
    "Übersetzung mit neuronalen Netzen", "梯度下降", "x" * 3,
    "a very long question " * 80, "🙂 emoji query", "shape of W[l] is (n[l], n[l-1])",
    "gradient checking with two-sided difference",
]


@pytest.fixture(scope="module")
def torch_embedder() -> TorchEmbedder:
    return TorchEmbedder()


def test_onnx_vectors_match_sentence_transformers(built_index, torch_embedder):
    assert len(QUERIES) == 50
    with NoteIndex.open(built_index) as notes:
        fast = notes.embedder.encode(QUERIES)
        assert type(notes.embedder).__name__ == "OnnxEmbedder"
    reference = torch_embedder.encode(QUERIES)
    cosines = (fast * reference).sum(axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)


def test_build_vectors_match_sentence_transformers(notes_dir, onnx_models, torch_embedder,
                                                  tmp_path):
    """A build embeds with OpenVINO (bfloat16 where the CPU has it): the passages of a course
    stay at cosine >= 0.999 to sentence-transformers' float32 vectors."""
    from notesearch.chunk import chunk_pages
    from notesearch.extract import iter_pages, open_pdf
    from notesearch.layout import IndexDir
    from notesearch.models import build_embedder

    pdf = sorted(notes_dir.glob("*.pdf"))[2]
    pages = [page for page, _ in iter_pages(open_pdf(pdf), pdf, lambda message: None)]
    texts = [chunk.embedded_text for chunk in chunk_pages(pages)]
    assert len(texts) > 50
    embedder = build_embedder(DEFAULT_MODEL, IndexDir(tmp_path / "index"))
    assert type(embedder).__name__ == "OpenVinoEmbedder"
    built = embedder.encode(texts)
    cosines = (built * torch_embedder.encode(texts)).sum(axis=1)
    assert cosines.min() >= 0.999, cosines.min()


def test_top10_identical_on_the_dev_queries(built_index, torch_embedder, dev_queries):
    with NoteIndex.open(built_index) as fast, NoteIndex.open(built_index) as slow:
        slow._embedder = torch_embedder
        for query in load_queries(dev_queries):
            a = [(h.file, h.page, h.chunk_id) for h in fast.search(query["query"], k=10)]
            b = [(h.file, h.page, h.chunk_id) for h in slow.search(query["query"], k=10)]
            assert a == b, query["id"]


def test_query_path_imports_neither_torch_nor_sentence_transformers(built_index):
    """Nor OpenVINO, the build's runtime: importing it alone costs a cold search 0.3 s."""
    code = (
        "import sys, json\nfrom notesearch.cli import main\n"
        f"sys.argv = ['notesearch', 'search', 'dropout', '--index', {str(built_index)!r}, "
        "'--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(m for m in ('torch', 'sentence_transformers', 'transformers', "
        "'openvino') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()
    assert json.loads(out[0])[0]["file"]  # the search answered
    assert json.loads(out[-1]) == []


def test_help_does_not_import_heavy_libraries():
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "notesearch", "--help"],
                            capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert not imported & {"torch", "numpy", "faiss", "onnxruntime", "sentence_transformers"}
    assert "Search your PDF and Markdown study notes" in result.stdout


def test_without_fast_model_search_falls_back_with_a_notice(index_copy, notes_dir, capsys,
                                                            monkeypatch, tmp_path):
    shutil.rmtree(index_copy / "models", ignore_errors=True)
    monkeypatch.setenv("NOTESEARCH_CACHE", str(tmp_path / "empty-cache"))
    with NoteIndex.open(index_copy) as notes:
        hits = notes.search("dropout regularization", k=3)
        assert type(notes.embedder).__name__ == "TorchEmbedder"
    assert hits and "notice: no fast query model" in capsys.readouterr().err

    # what the notice says to do works, though no note changed (the build embeds nothing)
    report = NoteIndex.build(notes_dir, index_copy, ocr=False)
    assert report.passages_embedded == 0
    with NoteIndex.open(index_copy) as notes:
        assert type(notes.embedder).__name__ == "OnnxEmbedder"


def test_query_embedder_prefers_onnx(built_index):
    from notesearch.layout import IndexDir

    assert type(query_embedder("all-MiniLM-L6-v2", IndexDir(built_index))).__name__ == \
        "OnnxEmbedder"
